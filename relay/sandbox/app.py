"""A local stand-in for Trackdrive's leads API, with fault injection and a record of calls.

Faults are decided before anything is validated or recorded as accepted, so a
call that was dropped, timed out or answered 5xx/429 never counts as accepted.
"""
from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import BadRequest as WerkzeugBadRequest

from relay.sandbox.behaviour import Behaviour, Dice
from relay.sandbox.recorder import LEAD_ID_HEADER, Recorder, mask_params, safe_headers
from relay.sandbox.validation import is_true, lead_token_of, validate_caller_call, validate_create
from relay.sandbox.vendors import VendorBehaviour, add_vendor_routes

CALLER_ACTIONS = {
    "caller_opt_out": ["PUT", "GET"],
    "caller_remove": ["POST", "DELETE", "GET"],
    "caller_move_to_end_of_schedule": ["PUT", "POST"],
}
CALLER_STATUS = {"caller_opt_out": "opted_out", "caller_remove": "removed",
                 "caller_move_to_end_of_schedule": "active"}
ASSIGNED_NUMBER = "+18005550100"
ASSIGNED_SMS_NUMBER = "+18005550101"


class DroppedConnection(Exception):
    """Raised when no socket is at hand to cut (e.g. under a test client)."""


@dataclass
class SandboxState:
    behaviour: Behaviour
    dice: Dice
    recorder: Recorder = field(default_factory=Recorder)
    closing: threading.Event = field(default_factory=threading.Event)
    next_lead_id: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Idempotency-Key -> the accepted answer. Trackdrive does not document one; the sandbox
    # honours it so a crash-window resend shows up as "replayed" rather than a second lead.
    answered_keys: dict[str, dict[str, Any]] = field(default_factory=dict)

    def new_lead_id(self) -> int:
        with self.lock:
            lead_id, self.next_lead_id = self.next_lead_id, self.next_lead_id + 1
            return lead_id

    def sleep(self, seconds: float) -> None:
        # Wakes at once when the server shuts down, so slow requests never hold it up.
        if seconds > 0:
            self.closing.wait(seconds)


def create_sandbox_app(behaviour: Behaviour | None = None,
                       vendors: VendorBehaviour | None = None) -> Flask:
    behaviour = behaviour or Behaviour()
    app = Flask("relay.sandbox")
    state = SandboxState(behaviour=behaviour, dice=Dice(behaviour.seed))
    app.extensions["sandbox"] = state

    @app.post("/api/v1/leads")
    def create_lead() -> Response:
        return _handle(state, "create_lead", None)

    for action, methods in CALLER_ACTIONS.items():
        app.add_url_rule(f"/api/v1/leads/<caller_id>/{action}", endpoint=action, methods=methods,
                         view_func=_caller_view(state, action))

    _add_control_routes(app, state)
    # The APIs fetch sources read leads from (Graph API, HubSpot CRM): see relay.sandbox.vendors.
    add_vendor_routes(app, vendors or VendorBehaviour(), state.closing, behaviour.seed)

    @app.errorhandler(DroppedConnection)
    def dropped(_: DroppedConnection) -> Response:
        return Response(status=502)

    return app


def sandbox_state(app: Flask) -> SandboxState:
    return app.extensions["sandbox"]


def _caller_view(state: SandboxState, action: str) -> Callable[[str], Response]:
    def view(caller_id: str) -> Response:
        return _handle(state, action, caller_id)
    view.__name__ = action
    return view


def _handle(state: SandboxState, action: str, caller_id: str | None) -> Response:
    behaviour = state.behaviour
    params, parse_error = _params()
    fate = state.dice.fate(behaviour)
    state.sleep(behaviour.delay_ms / 1000.0)
    if fate == "drop":
        _record(state, params, None, None, "dropped")
        return _drop_connection()
    if fate == "timeout":
        _record(state, params, 504, None, "timed_out")
        state.sleep(behaviour.timeout_s)
        return _answer(state, params, 504, {"success": False, "errors": ["gateway timeout"]},
                       "timed_out", record=False)
    if fate == "rate_limited":
        response = _answer(state, params, 429, {"success": False, "errors": ["too many requests"]},
                           "rate_limited")
        response.headers["Retry-After"] = _retry_after_text(behaviour.retry_after)
        return response
    if fate == "fail":
        return _answer(state, params, 503, {"success": False, "errors": ["service unavailable"]},
                       "failed")
    return _respond(state, action, caller_id, params, parse_error)


def _respond(state: SandboxState, action: str, caller_id: str | None, params: dict[str, Any],
             parse_error: str | None) -> Response:
    if parse_error:
        return _answer(state, params, 422, {"success": False, "errors": [parse_error]}, "rejected")
    token = lead_token_of(params)
    allowed = state.behaviour.tokens
    if allowed is not None and isinstance(token, str) and token and token not in allowed:
        return _answer(state, params, 401, {"success": False, "errors": ["lead_token is not valid"]},
                       "unauthorized")
    errors = (validate_create(params) if caller_id is None
              else validate_caller_call(caller_id, params))
    if errors:
        return _answer(state, params, 422, {"success": False, "errors": errors}, "rejected")
    key = request.headers.get("Idempotency-Key")
    with state.lock:
        earlier = state.answered_keys.get(key) if key else None
    if earlier is not None:
        return _answer(state, params, 200, earlier, "replayed")
    body = _accepted_body(state, action, caller_id, params)
    if key:
        with state.lock:
            state.answered_keys[key] = body
    return _answer(state, params, 201, body, "accepted")


def _accepted_body(state: SandboxState, action: str, caller_id: str | None,
                   params: dict[str, Any]) -> dict[str, Any]:
    lead_id = state.new_lead_id()
    lead = {"id": lead_id, "uuid": str(uuid.UUID(int=state.dice.bits(128), version=4)),
            "status": CALLER_STATUS.get(action, "active"),
            "caller_id": caller_id if caller_id is not None else params.get("caller_id")}
    body: dict[str, Any] = {"success": True, "lead": lead}
    if is_true(params.get("assign_trackdrive_number", False)):
        body["trackdrive_number_plain"] = ASSIGNED_NUMBER
    if is_true(params.get("assign_sms_number", False)):
        body["sms_number_plain"] = ASSIGNED_SMS_NUMBER
    return body


def _params() -> tuple[dict[str, Any], str | None]:
    """Query and body parameters merged (the body wins), plus a parse error if any."""
    params: dict[str, Any] = _with_nested_data(request.args.to_dict())
    body, error = _body_params()
    if isinstance(body, dict):
        params.update(body)
    return params, error


def _body_params() -> tuple[dict[str, Any] | None, str | None]:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None, None
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return _with_nested_data(request.form.to_dict()), None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None, "body is not valid JSON"
    if not isinstance(parsed, dict):
        return None, "body must be a JSON object"
    return parsed, None


def _with_nested_data(flat: dict[str, Any]) -> dict[str, Any]:
    """Turns query-style ``data[key]=value`` pairs into a ``data`` hash, as Rails does."""
    params: dict[str, Any] = {}
    data: dict[str, Any] = {}
    for key, value in flat.items():
        if key.startswith("data[") and key.endswith("]"):
            data[key[5:-1]] = value
        else:
            params[key] = value
    if data:
        params["data"] = data
    return params


def _answer(state: SandboxState, params: dict[str, Any], status: int, body: dict[str, Any],
            fate: str, *, record: bool = True) -> Response:
    if record:
        _record(state, params, status, body, fate)
    response = jsonify(body)
    response.status_code = status
    return response


def _record(state: SandboxState, params: dict[str, Any], status: int | None,
            body: dict[str, Any] | None, fate: str) -> None:
    json_body = _json_body()
    state.recorder.add({
        "time": time.time(),
        "method": request.method,
        "path": request.path,
        "query": mask_params(request.args.to_dict()),
        "headers": safe_headers(dict(request.headers)),
        "body": mask_params(json_body) if isinstance(json_body, dict) else json_body,
        "params": mask_params(params),
        "lead_id": request.headers.get(LEAD_ID_HEADER),
        "answer": {"status": status, "body": body, "fate": fate},
    })


def _json_body() -> Any:
    raw = request.get_data(cache=True)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"unparsed_bytes": len(raw)}


def _drop_connection() -> Response:
    sock = request.environ.get("werkzeug.socket")
    if sock is None:
        raise DroppedConnection()
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    # Werkzeug's write to the closed socket fails quietly; the client sees no answer.
    return Response(status=502)


def _retry_after_text(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def _add_control_routes(app: Flask, state: SandboxState) -> None:
    @app.get("/_sandbox/received")
    def received() -> Response:
        try:
            since = int(request.args.get("since", "0"))
        except ValueError:
            return _error(400, "since must be an integer")
        return jsonify(state.recorder.since(since))

    @app.delete("/_sandbox/received")
    def clear_received() -> Response:
        state.recorder.clear()
        return jsonify({"cleared": True})

    @app.get("/_sandbox/stats")
    def stats() -> Response:
        return jsonify(state.recorder.stats())

    @app.get("/_sandbox/behaviour")
    def get_behaviour() -> Response:
        return jsonify(state.behaviour.to_dict())

    @app.post("/_sandbox/behaviour")
    def set_behaviour() -> Response:
        try:
            changes = request.get_json(force=True)
        except WerkzeugBadRequest:
            return _error(400, "behaviour must be a JSON object")
        if not isinstance(changes, dict):
            return _error(400, "behaviour must be a JSON object")
        try:
            state.behaviour = state.behaviour.updated(changes)
        except ValueError as exc:
            return _error(400, str(exc))
        if "seed" in changes:
            state.dice.reseed(state.behaviour.seed)
        return jsonify(state.behaviour.to_dict())


def _error(status: int, message: str) -> Response:
    response = jsonify({"success": False, "errors": [message]})
    response.status_code = status
    return response
