"""The operator console: server-rendered pages under ``/admin/`` over the outbox.

Overview, leads and their detail, actions (retry, replay, purge) with confirmation
and audit, reconciliation with CSV, and a mapping playground. Pages are Jinja
templates with autoescaping; no script runs in them, and every answer carries a
strict Content-Security-Policy. Access: see :mod:`relay.web.console.access`.
"""
from __future__ import annotations

from flask import Blueprint, Flask, Response

bp = Blueprint("console", __name__, url_prefix="/admin", template_folder="templates",
               static_folder="static", static_url_path="/static")

# Styles and images from this origin only; no script, no frame, forms post only here.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'")


@bp.after_request
def harden(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_console(app: Flask) -> None:
    from relay.web.console import access, actions, pages, playground, reconcile  # noqa: F401 (routes)

    access.init_sessions(app)
    app.register_blueprint(bp)
