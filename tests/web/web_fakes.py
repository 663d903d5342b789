"""Small stand-ins for a loaded mapping source and for the dispatcher."""
from __future__ import annotations

import json
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qsl

from relay.errors import MalformedBody, UnsupportedMediaType
from relay.mapping.httpfile import parse_http_file
from relay.mapping.inbound import IdempotencyKey
from relay.mapping.model import Drop, HmacAuth, InboundRequest, InboundSettings, Refusal, TrackdriveCall

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"
TEST_SECRET = "heldout-test-secret"
ENV = {
    "ACME_LEAD_TOKEN": "lead-token-value",
    "ACME_TOKEN": "token-current",
    "ACME_TOKEN_NEXT": "token-next",
    "ACME_USER": "acme",
    "ACME_PASS": "s3cret:with-colon",
    "META_APP_SECRET": TEST_SECRET,
    "OLD_SECRET": "an-old-secret",
    "TYPEFORM_SECRET": TEST_SECRET,
    "META_VERIFY_TOKEN": "verify-me",
}

META_HMAC = HmacAuth(header="X-Hub-Signature-256", algorithm="sha256", encoding="hex",
                     prefix="sha256=", secret_envs=("META_APP_SECRET",))
TYPEFORM_HMAC = HmacAuth(header="Typeform-Signature", algorithm="sha256", encoding="base64",
                         prefix="sha256=", secret_envs=("TYPEFORM_SECRET",))


@dataclass
class FakeSource:
    """Parses JSON or form bodies (plus the query); needs a phone; drops @example.test."""

    name: str
    inbound: InboundSettings = field(default_factory=InboundSettings)
    version: str = "1"
    trackdrive_env: tuple[str, ...] = ("ACME_LEAD_TOKEN",)
    parse_error: Exception | None = None
    map_error: Exception | None = None
    parsed: list[InboundRequest] = field(default_factory=list)
    split: Any = None
    fetch: Any = None
    idempotency: IdempotencyKey = field(default_factory=lambda: IdempotencyKey(header="Idempotency-Key"))

    def split_leads(self, payload: Any) -> list[Any]:
        return [payload]

    def parse(self, request: InboundRequest) -> dict[str, Any]:
        self.parsed.append(request)
        if self.parse_error is not None:
            raise self.parse_error
        payload: dict[str, Any] = dict(parse_qsl(request.query, keep_blank_values=True))
        media_type = request.content_type.split(";")[0].strip().lower()
        if media_type == "application/json":
            try:
                body = json.loads(request.body)
            except ValueError as exc:
                raise MalformedBody(f"body is not valid JSON: {exc}") from None
            if not isinstance(body, dict):
                raise MalformedBody("JSON body must be an object")
            payload.update(body)
        elif media_type == "application/x-www-form-urlencoded":
            payload.update(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        elif request.body:
            raise UnsupportedMediaType(f"content type {media_type or 'none'} is not accepted",
                                       content_type=media_type)
        return payload

    def map_payload(self, payload: dict[str, Any]) -> TrackdriveCall | Refusal | Drop:
        if self.map_error is not None:
            raise self.map_error
        email = str(payload.get("email", ""))
        if email.endswith("@example.test"):
            return Drop(source=self.name, reason="vendor test lead")
        phone = str(payload.get("phone") or "")
        if not phone:
            return Refusal(source=self.name, field="caller_id", rule="required",
                           message="caller_id is required: no value at $.phone", paths=("$.phone",))
        return TrackdriveCall(action="create_lead", method="POST", path="/api/v1/leads", query={},
                              body={"caller_id": phone, "lead_token": "${ACME_LEAD_TOKEN}"},
                              secrets={"lead_token": "ACME_LEAD_TOKEN"})

    def idempotency_key(self, payload: dict[str, Any], headers: Mapping[str, str]) -> str | None:
        return payload.get("event_id") or headers.get("Idempotency-Key")

    def required_env(self) -> set[str]:
        return self.inbound.secret_envs() | set(self.trackdrive_env)

    def missing_env(self, env: Mapping[str, str]) -> list[str]:
        return sorted(name for name in self.required_env() if not env.get(name))


class FakeDispatcher:
    """Records hand-overs; answers each with ``outcome`` (a pending future when None)."""

    owner = "fake-worker"
    evented = False  # as a Dispatcher says which way it sends, and how many calls at once
    concurrency = 1

    def __init__(self, outcome: Any = None, *, completes: bool = True) -> None:
        self.outcome = outcome
        self.completes = completes
        self.submitted: list[str] = []
        self.reserved = 0
        self.started = False
        self.stopped = False

    def reserve(self) -> bool:
        self.reserved += 1
        return True

    def unreserve(self) -> None:
        self.reserved -= 1

    def deliver_leased(self, lead: Any) -> Future:
        assert lead.lease_owner == self.owner, "a handed-over lead is stored leased to its dispatcher"
        self.reserved -= 1
        return self.submit(lead.id)

    def start(self) -> None:
        self.started = True

    def stop(self, timeout_s: float) -> None:
        self.stopped = True

    def submit(self, lead_id: str) -> Future:
        self.submitted.append(lead_id)
        future: Future = Future()
        if self.completes:
            future.set_result(self.outcome)
        return future


def recorded(name: str) -> InboundRequest:
    """A recorded vendor request from tests/payloads."""
    return parse_http_file((PAYLOADS / name).read_bytes())


def post_recorded(client: Any, source: str, name: str, **overrides: Any) -> Any:
    request = recorded(name)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
    headers.update(overrides.pop("headers", {}))
    path = f"/hooks/{source}" + (f"?{request.query}" if request.query else "")
    return client.open(path, method=request.method, data=request.body, headers=headers, **overrides)
