"""Stand-ins for the vendor APIs the relay fetches leads from: Meta's Graph API and HubSpot's CRM.

``GET /{version}/{leadgen_id}`` answers a lead object with ``field_data`` after checking
``access_token`` and ``appsecret_proof``; ``GET /crm/v3/objects/contacts/{id}`` answers a
contact after checking the bearer token. Any numeric id has a lead (made up from the id,
phones in the fictional 555-01xx range) unless one was put in with
``POST /_sandbox/vendors/leads``; other ids are unknown. Errors have each vendor's shape.
Faults (latency, 5xx, 429, an expired token) are set by flags or ``POST /_sandbox/vendors``.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping

from flask import Flask, Response, jsonify, request

from relay.sandbox.behaviour import Behaviour, Dice

GRAPH_VERSION = re.compile(r"^v\d+\.\d+$")


@dataclass(frozen=True)
class VendorBehaviour:
    delay_ms: int = 0
    fail_rate: float = 0.0  # answer 500
    rate_429: float = 0.0  # answer 429 with Retry-After
    retry_after: float = 1.0
    token_expired: bool = False  # every token is refused as expired
    graph_tokens: tuple[str, ...] | None = None  # accepted page tokens; None: any non-empty one
    graph_app_secret: str | None = None  # checks appsecret_proof when set
    hubspot_tokens: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("fail_rate", "rate_429"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.delay_ms < 0 or self.retry_after < 0:
            raise ValueError("delay_ms and retry_after must not be negative")

    def updated(self, changes: Mapping[str, Any]) -> VendorBehaviour:
        known = {item.name for item in fields(self)}
        values: dict[str, Any] = {}
        for name, raw in changes.items():
            if name not in known:
                raise ValueError(f"unknown vendor behaviour field {name!r}")
            values[name] = _coerce(name, raw)
        return replace(self, **values)

    def to_dict(self) -> dict[str, Any]:
        shown = asdict(self)
        for name in ("graph_tokens", "hubspot_tokens"):
            shown[name] = None if shown[name] is None else f"{len(shown[name])} token(s)"
        shown["graph_app_secret"] = None if self.graph_app_secret is None else "set"
        return shown


def _coerce(name: str, raw: Any) -> Any:
    try:
        if name == "token_expired":
            if not isinstance(raw, bool):
                raise ValueError
            return raw
        if name in ("graph_tokens", "hubspot_tokens"):
            if raw is None:
                return None
            items = raw.split(",") if isinstance(raw, str) else raw
            if not isinstance(items, list) or not all(isinstance(t, str) and t for t in items):
                raise ValueError
            return tuple(items)
        if name == "graph_app_secret":
            if raw is not None and not (isinstance(raw, str) and raw):
                raise ValueError
            return raw
        if isinstance(raw, bool):
            raise ValueError
        return int(raw) if name == "delay_ms" else float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{name} has the wrong type") from None


@dataclass
class VendorState:
    behaviour: VendorBehaviour
    dice: Dice
    closing: threading.Event
    leads: dict[str, dict[str, Any]] = field(default_factory=dict)  # "graph:ID" / "hubspot:ID" -> object
    counts: dict[str, int] = field(default_factory=dict)  # "graph 200" -> answers
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, vendor: str, status: int) -> None:
        with self.lock:
            key = f"{vendor} {status}"
            self.counts[key] = self.counts.get(key, 0) + 1


def add_vendor_routes(app: Flask, behaviour: VendorBehaviour, closing: threading.Event,
                      seed: int | None = None) -> VendorState:
    state = VendorState(behaviour, Dice(seed), closing)
    app.extensions["sandbox_vendors"] = state

    @app.get("/<version>/<leadgen_id>")
    def graph_lead(version: str, leadgen_id: str) -> Response:
        if not GRAPH_VERSION.match(version):
            return _answer(state, "graph", 400, _graph_error(f"Unknown path components: /{version}", 2500))
        return _graph(state, leadgen_id)

    @app.get("/crm/v3/objects/contacts/<object_id>")
    def hubspot_contact(object_id: str) -> Response:
        return _hubspot(state, object_id)

    @app.get("/_sandbox/vendors")
    def get_vendor_behaviour() -> Response:
        return jsonify({**state.behaviour.to_dict(), "answers": dict(state.counts)})

    @app.post("/_sandbox/vendors")
    def set_vendor_behaviour() -> Response:
        changes = request.get_json(force=True, silent=True)
        if not isinstance(changes, dict):
            return _control_error("vendor behaviour must be a JSON object")
        try:
            state.behaviour = state.behaviour.updated(changes)
        except ValueError as exc:
            return _control_error(str(exc))
        return jsonify(state.behaviour.to_dict())

    @app.post("/_sandbox/vendors/leads")
    def put_leads() -> Response:
        given = request.get_json(force=True, silent=True)
        if not isinstance(given, dict) or not all(k in ("graph", "hubspot") and isinstance(v, dict)
                                                  for k, v in given.items()):
            return _control_error('give {"graph": {"ID": lead}, "hubspot": {"ID": contact}}')
        with state.lock:
            for vendor, objects in given.items():
                for object_id, body in objects.items():
                    state.leads[f"{vendor}:{object_id}"] = body
        return jsonify({"stored": sum(len(v) for v in given.values())})

    return state


def _fault(state: VendorState, vendor: str) -> Response | None:
    behaviour = state.behaviour
    if behaviour.delay_ms:
        state.closing.wait(behaviour.delay_ms / 1000.0)
    fate = state.dice.fate(Behaviour(fail_rate=behaviour.fail_rate, rate_429=behaviour.rate_429))
    if fate == "rate_limited":
        body = (_graph_error("(#4) Application request limit reached", 4) if vendor == "graph"
                else {"status": "error", "message": "You have reached your secondly limit.",
                      "category": "RATE_LIMITS"})
        response = _answer(state, vendor, 429, body)
        response.headers["Retry-After"] = f"{behaviour.retry_after:g}"
        return response
    if fate == "fail":
        body = (_graph_error("An unexpected error has occurred. Please retry your request later.", 2)
                if vendor == "graph" else {"status": "error", "message": "internal error",
                                           "category": "INTERNAL_ERROR"})
        return _answer(state, vendor, 500, body)
    return None


def _graph(state: VendorState, leadgen_id: str) -> Response:
    faulted = _fault(state, "graph")
    if faulted is not None:
        return faulted
    behaviour = state.behaviour
    token = request.args.get("access_token", "")
    if not token:
        return _answer(state, "graph", 400, _graph_error(
            "An active access token must be used to query information about the current user.", 2500))
    if behaviour.token_expired:
        return _answer(state, "graph", 400, _graph_error(
            "Error validating access token: Session has expired on Thursday, 27-Nov-25 10:00:00 PST.",
            190, subcode=463))
    if behaviour.graph_tokens is not None and token not in behaviour.graph_tokens:
        return _answer(state, "graph", 400, _graph_error("Invalid OAuth access token data.", 190))
    if behaviour.graph_app_secret is not None:
        expected = hmac.new(behaviour.graph_app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.args.get("appsecret_proof", "")):
            return _answer(state, "graph", 400, _graph_error(
                "Invalid appsecret_proof provided in the API argument", 100, kind="GraphMethodException"))
    with state.lock:
        lead = state.leads.get(f"graph:{leadgen_id}")
    if lead is None and leadgen_id.isdigit() and not leadgen_id.startswith("0"):
        lead = made_up_graph_lead(leadgen_id)
    if lead is None:
        return _answer(state, "graph", 400, _graph_error(
            f"Unsupported get request. Object with ID '{leadgen_id}' does not exist, cannot be loaded "
            "due to missing permissions, or does not support this operation.", 100, subcode=33,
            kind="GraphMethodException"))
    return _answer(state, "graph", 200, lead)


def _hubspot(state: VendorState, object_id: str) -> Response:
    faulted = _fault(state, "hubspot")
    if faulted is not None:
        return faulted
    behaviour = state.behaviour
    header = request.headers.get("Authorization", "")
    token = header[len("Bearer "):] if header.startswith("Bearer ") else ""
    if behaviour.token_expired and token:
        return _answer(state, "hubspot", 401, {
            "status": "error", "category": "EXPIRED_AUTHENTICATION",
            "message": "The OAuth token used to make this call expired 2 hour(s) ago."})
    if not token or (behaviour.hubspot_tokens is not None and token not in behaviour.hubspot_tokens):
        return _answer(state, "hubspot", 401, {
            "status": "error", "category": "INVALID_AUTHENTICATION",
            "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication."})
    with state.lock:
        contact = state.leads.get(f"hubspot:{object_id}")
    if contact is None and object_id.isdigit() and not object_id.startswith("0"):
        contact = made_up_contact(object_id)
    if contact is None:
        return _answer(state, "hubspot", 404, {"status": "error", "category": "OBJECT_NOT_FOUND",
                                               "message": "resource not found"})
    return _answer(state, "hubspot", 200, contact)


def _phone_of(object_id: str) -> str:
    return f"+15125550{100 + int(object_id) % 100}"  # the fictional 555-01xx range


def made_up_graph_lead(leadgen_id: str) -> dict[str, Any]:
    return {
        "created_time": "2025-11-27T10:46:03+0000", "id": leadgen_id, "ad_id": "120214455667788990",
        "form_id": "881234567890123", "platform": "fb",
        "field_data": [
            {"name": "first_name", "values": ["Sandbox"]},
            {"name": "last_name", "values": [f"Lead {leadgen_id[-4:]}"]},
            {"name": "email", "values": [f"lead{leadgen_id}@example.com"]},
            {"name": "phone_number", "values": [_phone_of(leadgen_id)]},
            {"name": "state", "values": ["TX"]},
        ],
        "custom_disclaimer_responses": [{"checkbox_key": "tcpa_consent", "is_checked": "1"}],
    }


def made_up_contact(object_id: str) -> dict[str, Any]:
    return {"id": object_id, "archived": False, "createdAt": "2025-11-27T10:46:03.512Z",
            "properties": {"firstname": "Sandbox", "lastname": f"Contact {object_id[-4:]}",
                           "email": f"contact{object_id}@example.com", "phone": _phone_of(object_id),
                           "state": "Texas", "hs_object_id": object_id}}


def _graph_error(message: str, code: int, *, subcode: int | None = None,
                 kind: str = "OAuthException") -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code, "fbtrace_id": "ASandboxTrace"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def _answer(state: VendorState, vendor: str, status: int, body: dict[str, Any]) -> Response:
    state.count(vendor, status)
    response = jsonify(body)
    response.status_code = status
    return response


def _control_error(message: str) -> Response:
    response = jsonify({"success": False, "errors": [message]})
    response.status_code = 400
    return response
