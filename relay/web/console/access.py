"""Who may use the console: a token login, a signed session cookie, CSRF on every change.

``RELAY_ADMIN_TOKEN`` logs in as ``admin``; ``RELAY_ADMIN_READONLY_TOKEN`` as
``readonly``, which sees every page but may change nothing. The session cookie is
signed with a key derived from the configured tokens (changing one logs everyone
out), HttpOnly, SameSite=Strict, and Secure whenever the request came over HTTPS.
Every POST carries the session's CSRF token. Without any token the console is off
and says how to turn it on.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from typing import Any

from flask import Flask, Request, Response, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue

from relay.errors import BadRequest, Forbidden, RelayError, Unauthorized
from relay.web.admin import (
    ADMIN,
    READONLY,
    admin_enabled,
    configured_readonly_token,
    configured_token,
    how_to_enable,
    role_of,
)
from relay.web.console import bp
from relay.web.observe import request_client_address
from relay.web.state import relay_state

COOKIE_NAME = "relay_console"
CSRF_FIELD = "csrf_token"
OPEN_ENDPOINTS = ("console.login", "console.static")


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the request itself came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request) and request.is_secure


def init_sessions(app: Flask) -> None:
    state = relay_state(app)
    tokens = [configured_token(state) or "", configured_readonly_token(state) or ""]
    if any(tokens):
        material = "\0".join(tokens).encode("utf-8")
        app.secret_key = hmac.new(material, b"trackdrive-relay console session", hashlib.sha256).hexdigest()
    app.session_interface = ConsoleSessions()
    app.config.update(SESSION_COOKIE_NAME=COOKIE_NAME, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_PATH="/admin",
                      PERMANENT_SESSION_LIFETIME=datetime.timedelta(hours=state.settings.console_session_hours))




@bp.before_request
def guard() -> ResponseReturnValue | None:
    state = relay_state()
    if not admin_enabled(state):
        raise Forbidden(how_to_enable(state), check="admin_disabled")
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if not session.get("role"):
        if request.cookies.get(COOKIE_NAME) and not session:
            raise Unauthorized("this console session is not valid (expired, altered, or signed before a "
                               "token changed): log in again", check="session")
        if request.method != "GET":
            raise Unauthorized("log in to the console first", check="session")
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    if request.method == "POST":
        check_csrf(request)
    return None


def check_csrf(req: Request) -> None:
    expected = session.get("csrf") or session.get("login_csrf") or ""
    given = req.form.get(CSRF_FIELD, "")
    if not given:
        raise Forbidden("this form carries no CSRF token: reload the page and submit it again",
                        field=CSRF_FIELD, rule="csrf")
    if not expected or not hmac.compare_digest(given, expected):
        raise Forbidden("this form's CSRF token does not match your session: reload the page and "
                        "submit it again", field=CSRF_FIELD, rule="csrf")


def require_change() -> None:
    """Stop a read-only session before it changes anything."""
    if session.get("role") != ADMIN:
        raise Forbidden("a read-only login sees everything but changes nothing: log in with the admin "
                        "token to act", check="readonly")


def csrf_token() -> str:
    return str(session.get("csrf") or session.get("login_csrf") or "")


def actor() -> str:
    """Who did it, for the audit log: the name given at login, the role, the client address."""
    name = session.get("name") or "operator"
    return f"{name} ({session.get('role', '?')}) from {request_client_address(request)}"


def is_admin() -> bool:
    return session.get("role") == ADMIN


@bp.app_context_processor
def console_globals() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "is_admin": is_admin, "session_name": lambda: session.get("name", ""),
            "session_role": lambda: session.get("role", "")}


# --- login and logout ---

@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    error = ""
    if request.method == "POST":
        check_csrf(request)
        role = role_of(relay_state(), (request.form.get("token") or "").strip())
        if role is not None:
            return start_session(role, (request.form.get("name") or "").strip()[:60])
        error = "That token does not match the admin or the read-only token."
    if not session.get("login_csrf"):
        session["login_csrf"] = secrets.token_urlsafe(32)
    response = Response(render_template("console/login.html", error=error, next=safe_next()),
                        status=401 if error else 200)
    return response


def start_session(role: str, name: str) -> ResponseReturnValue:
    session.clear()
    session.permanent = True
    session.update(role=role if role in (ADMIN, READONLY) else READONLY, name=name or "operator",
                   csrf=secrets.token_urlsafe(32))
    return redirect(safe_next() or url_for("console.overview"))


def safe_next() -> str:
    """Where to go after logging in: only a path inside the console, never another site."""
    target = request.values.get("next") or ""
    return target if target.startswith("/admin/") and not target.startswith("//") else ""


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    session.clear()
    return redirect(url_for("console.login"))


# --- errors: the same codes as the JSON API, as a page ---

@bp.errorhandler(RelayError)
def error_page(error: RelayError) -> tuple[str, int]:
    return render_template("console/error.html", error=error.to_dict()["error"], status=error.status), error.status


def bad(message: str, field: str, rule: str) -> BadRequest:
    return BadRequest(message, field=field, rule=rule)
