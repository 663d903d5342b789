"""One log line and the metrics for every request, and log masking for every loaded secret.

The outcome of a vendor request is read from the answer the relay gives: the
lead's status for a stored lead, the error code otherwise. The hooks endpoint
stays free of bookkeeping, and the log, the metrics and the vendor always agree.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Mapping

from flask import Flask, Request, Response, g, request

from relay import metrics, outcomes
from relay.intake.addresses import client_address, forwarded_for
from relay.pii import register_env_secrets, register_url_password
from relay.web.answers import answer_of
from relay.web.error_handlers import HTTP_CODE_PREFIX
from relay.web.request_id import current_request_id
from relay.web.state import relay_state

log = logging.getLogger("relay.request")

HOOKS_ENDPOINT = "hooks.receive"
# Polled every few seconds by load balancers and Prometheus: logged at debug only.
QUIET_PATHS = ("/healthz", "/readyz", "/metrics")

# How a request that failed is counted, by its error code: derived from relay.outcomes.
OUTCOME_BY_CODE = {o.name: o.metric for o in outcomes.OUTCOMES.values() if o.is_error}


def register_mapping_secrets(registry: Any, env: Mapping[str, str]) -> None:
    """Mask, in every log line, the value of each variable a loaded mapping references.

    Call again after a reload: a new mapping may reference new variables.
    """
    for name in registry.names():
        source = registry.get(name)
        required_env = getattr(source, "required_env", None)
        register_env_secrets(required_env() if required_env else (), env)


def start_timer() -> None:
    g.started_at = time.monotonic()


def observe_response(response: Response) -> Response:
    # One lookup of each context-local object: every proxy access costs a context lookup.
    req, ctx = request._get_current_object(), g._get_current_object()  # type: ignore[attr-defined]
    now = time.monotonic()
    elapsed_s = now - getattr(ctx, "started_at", now)
    try:
        if req.endpoint == HOOKS_ENDPOINT:
            observe_hook(req, response, elapsed_s)
        else:
            log_request(req, response, elapsed_s,
                        level=logging.DEBUG if req.path in QUIET_PATHS else logging.INFO)
    except Exception:  # bookkeeping must never change the vendor's answer
        logging.getLogger("relay.web").exception("recording a request failed")
    return response


def observe_hook(req: Request, response: Response, elapsed_s: float) -> None:
    answer = answer_body(response)
    outcome = request_outcome(response, answer)
    source = metric_source(str((req.view_args or {}).get("source_name") or ""))
    if outcome is not None:
        metrics.record_request(source, outcome, elapsed_s)
    level = logging.INFO if response.status_code < 500 else logging.ERROR
    log_request(req, response, elapsed_s, level=level, source=source, outcome=outcome or "handshake",
                lead_id=answer.get("lead_id"))


def answer_body(response: Response) -> dict[str, Any]:
    # The relay's own answers carry the body they were built from; only other
    # JSON responses (errors) are parsed back.
    built = answer_of(response)
    if built is not None:
        return built
    if not response.is_json or response.direct_passthrough:
        return {}
    body = response.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def request_outcome(response: Response, answer: dict[str, Any]) -> str | None:
    """How a hooks request ended; None for a Meta subscription handshake (no lead)."""
    if answer.get("handshake"):  # a source's handshake: answered, no lead
        return None
    if answer.get("duplicate"):
        return outcomes.request_label(duplicate=True)
    if "lead_id" in answer:
        return outcomes.request_label(status=str(answer.get("status")))
    if "leads" in answer:  # a batch: how the request as a whole was answered
        return outcomes.batch_label(str(answer.get("status")))
    error = answer.get("error")
    if isinstance(error, dict):
        code = str(error.get("code"))
        if code.startswith(HTTP_CODE_PREFIX) and response.status_code < 500:
            return OUTCOME_BY_CODE["bad_request"]  # an HTTP error werkzeug raised that the table has no code for
        return outcomes.request_label(code=code)
    if response.status_code < 300 and not response.is_json:
        return None
    return outcomes.ERROR_LABEL


def metric_source(name: str) -> str:
    registry = relay_state().registry
    if registry.get(name) is not None or registry.problems_for(name):
        return name
    return metrics.UNKNOWN_SOURCE


def log_request(req: Request, response: Response, elapsed_s: float, *, level: int, **fields: Any) -> None:
    if not log.isEnabledFor(level):
        return
    status = response.status_code
    extra = {"method": req.method, "path": req.path, "status": status, "request_id": current_request_id(),
             "duration_ms": round(elapsed_s * 1000, 2), "client_addr": request_client_address(req),
             **{key: value for key, value in fields.items() if value is not None}}
    # Built and handled directly: Logger.log would walk the stack for a caller no line shows.
    record = log.makeRecord(log.name, level, "", 0, "%s %s %s", (req.method, req.path, status), None,
                            extra=extra)
    log.handle(record)


def request_client_address(req: Request) -> str:
    """The address the hook already worked out, or the same rule applied here."""
    known = getattr(g, "client_addr", None)
    if known is not None:
        return known
    return client_address(req.remote_addr, forwarded_for(req.environ), relay_state().settings.trusted_proxies)


def init_observe(app: Flask) -> None:
    state = relay_state(app)
    register_mapping_secrets(state.registry, state.env)
    register_env_secrets([state.settings.admin_token_env], state.env)
    register_url_password(state.settings.database_url)
    app.before_request(start_timer)
    app.after_request(observe_response)
