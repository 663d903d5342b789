"""The admin surface: who may see it, and a read-only view of the outbox.

With ``RELAY_ADMIN_TOKEN`` set, every admin request must carry it
(``Authorization: Bearer <token>`` or ``X-Admin-Token``); the optional
``RELAY_ADMIN_READONLY_TOKEN`` is accepted too, for reading. Without a token the
admin endpoints and the console are off, whoever asks: a peer's address proves
nothing (a same-host forwarder makes every caller look local).
"""
from __future__ import annotations

import base64
import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Request, Response, jsonify, request

from relay import metrics as relay_metrics
from relay.errors import BadRequest, Forbidden, NotFound, Unauthorized
from relay.intake.auth import HeaderLookup
from relay.outcomes import LEAD_STATUSES
from relay.pii import mask_body, mask_secrets, mask_text, mask_value
from relay.store.base import Lead, Settlement
from relay.web.observe import request_client_address
from relay.web.request_id import current_request_id
from relay.web.state import RelayState, relay_state

bp = Blueprint("admin", __name__)
audit = logging.getLogger("relay.audit")

TOKEN_HEADER = "X-Admin-Token"
ADMIN, READONLY = "admin", "readonly"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Access:
    granted: bool
    presented: bool  # a token came with the request (right or wrong)
    refusal: str = ""
    role: str = ""  # admin | readonly, once granted
    enabled: bool = True  # False: no token is configured, so the admin surface is off


def configured_token(state: RelayState) -> str | None:
    return (state.env.get(state.settings.admin_token_env) or "").strip() or None


def configured_readonly_token(state: RelayState) -> str | None:
    return (state.env.get(state.settings.admin_readonly_token_env) or "").strip() or None


def admin_enabled(state: RelayState) -> bool:
    return configured_token(state) is not None or configured_readonly_token(state) is not None


def how_to_enable(state: RelayState) -> str:
    return (f"the console and the admin endpoints are off: set {state.settings.admin_token_env} "
            f"(and optionally {state.settings.admin_readonly_token_env} for read-only access) "
            "and restart the relay to turn them on")


def role_of(state: RelayState, given: str) -> str | None:
    """The role a presented token grants, compared in constant time; None when it matches none."""
    granted = None
    for role, expected in ((ADMIN, configured_token(state)), (READONLY, configured_readonly_token(state))):
        if expected is not None and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
            granted = granted or role
    return granted


def presented_token(headers: HeaderLookup) -> str | None:
    scheme, _, credentials = (headers.get("Authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return (headers.get(TOKEN_HEADER) or "").strip() or None


def check_access(state: RelayState, req: Request) -> Access:
    given = presented_token(req.headers)
    if not admin_enabled(state):
        return Access(granted=False, presented=given is not None, refusal=how_to_enable(state), enabled=False)
    if given is None:
        return Access(granted=False, presented=False,
                      refusal=f"admin token required in header Authorization (Bearer) or {TOKEN_HEADER}")
    role = role_of(state, given)
    if role is None:
        return Access(granted=False, presented=True, refusal="admin token mismatch")
    return Access(granted=True, presented=True, role=role)


def require_admin() -> None:
    state = relay_state()
    access = check_access(state, request)
    if not access.enabled:
        raise Forbidden(access.refusal, check="admin_disabled")
    if not access.granted:
        raise Unauthorized(access.refusal, check="admin_token")


@bp.before_request
def guard() -> None:
    require_admin()


# --- the outbox, read only ---

@bp.get("/admin/outbox")
def outbox_list() -> Response:
    status = request.args.get("status") or None
    if status is not None and status not in LEAD_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(LEAD_STATUSES)}", field="status", rule="enum")
    source = request.args.get("source") or None
    limit = parse_limit(request.args.get("limit"))
    leads = relay_state().store.list(status=status, source=source, limit=limit)
    return jsonify({"leads": [lead_summary(lead) for lead in leads], "count": len(leads), "limit": limit})


@bp.get("/admin/outbox/counts")
def outbox_counts() -> Response:
    since = parse_epoch("since")
    until = parse_epoch("until")
    store = relay_state().store
    now = time.time()
    stats = store.pending_stats(now)
    counts = [{"day": c.day, "source": c.source, "status": c.status, "count": c.count}
              for c in store.counts(since=since, until=until)]
    oldest_age = None if stats.oldest_received_at is None else max(0.0, now - stats.oldest_received_at)
    return jsonify({"counts": counts, "pending": stats.pending, "dead": stats.dead,
                    "oldest_pending_age_s": oldest_age})


@bp.get("/admin/outbox/<lead_id>")
def outbox_lead(lead_id: str) -> Response:
    store = relay_state().store
    lead = store.get(lead_id)
    if lead is None:
        raise NotFound(f"no lead with id {lead_id!r}", field="lead_id")
    detail = lead_detail(lead, [attempt_view(a) for a in store.attempts(lead_id)])
    if is_yes(request.args.get("body")):
        reveal = is_yes(request.args.get("reveal"))
        detail["body"] = body_view(lead.body, reveal=reveal)
        if reveal:
            log_reveal(lead.id)
    return jsonify(detail)


def is_yes(text: str | None) -> bool:
    return text in ("1", "true", "yes")


def log_reveal(lead_id: str) -> None:
    audit.warning("personal data of lead %s revealed", lead_id,
                  extra={"event": "pii_revealed", "lead_id": lead_id, "via": "admin_api",
                         "client_addr": request_client_address(request), "request_id": current_request_id(),
                         "authenticated_by": check_access(relay_state(), request).role + "_token"})


def parse_limit(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}", field="limit", rule="range")
    return limit


def parse_epoch(name: str) -> float | None:
    text = request.args.get(name)
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise BadRequest(f"{name} must be epoch seconds", field=name, rule="number") from None


# --- views: personal data masked, stored secrets are only ever references ---

masked = mask_value


def lead_summary(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.id, "source": lead.source, "status": lead.status, "received_at": lead.received_at,
        "attempts": lead.attempts, "next_attempt_at": lead.next_attempt_at,
        "response_status": lead.response_status, "delivered_at": lead.delivered_at,
        "updated_at": lead.updated_at, "request_id": lead.request_id,
        "mapping_version": lead.mapping_version, "error": masked(lead.error),
    }


def lead_detail(lead: Lead, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        **lead_summary(lead),
        "method": lead.method, "content_type": lead.content_type, "query": mask_text(lead.query),
        "headers": masked(lead.headers), "client_addr": lead.client_addr, "call": masked(lead.call),
        "dedupe_key": lead.dedupe_key and mask_text(lead.dedupe_key),
        "lease_owner": lead.lease_owner, "lease_until": lead.lease_until,
        "response_body": lead.response_body and mask_text(lead.response_body),
        "body_bytes": len(lead.body), "attempt_history": attempts,
    }


def attempt_view(attempt: Settlement) -> dict[str, Any]:
    return {"result": attempt.result, "at": attempt.at, "response_status": attempt.response_status,
            "reason": attempt.reason, "latency_s": attempt.latency_s,
            "next_attempt_at": attempt.next_attempt_at,
            "response_body": attempt.response_body and mask_text(attempt.response_body)}


def body_view(body: bytes, *, reveal: bool = False) -> dict[str, Any]:
    """The stored request body: masked, or with ``reveal`` as stored (registered secrets still masked)."""
    if not reveal:
        return {"encoding": "utf-8", "data": mask_body(body), "masked": True}
    try:
        return {"encoding": "utf-8", "data": mask_secrets(body.decode("utf-8"))}
    except UnicodeDecodeError:
        return {"encoding": "base64", "data": base64.b64encode(body).decode("ascii")}


# --- metrics ---

@bp.get("/metrics")
def metrics() -> Response:
    state = relay_state()
    return Response(relay_metrics.scrape(state.store, state.settings.metrics_dir),
                    content_type=relay_metrics.CONTENT_TYPE)
