"""A tiny stand-in for a compiled mapping, so the runner and CLI are tested on their own."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from relay.errors import MalformedBody
from relay.mapping.model import Drop, InboundRequest, Refusal, TrackdriveCall


class FakeSource:
    def __init__(self, path: Path, env: dict[str, str] | None = None) -> None:
        self.path = path
        self.name = path.stem
        self.env = env

    def map(self, request: InboundRequest) -> Any:
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError:
            raise MalformedBody("the body is not valid JSON", content_type=request.content_type) from None
        if payload.get("explode"):
            raise RuntimeError("boom")
        if not payload.get("phone"):
            return Refusal(self.name, "caller_id", "required", "caller_id is required", ("$.phone",))
        if str(payload.get("email", "")).endswith("@example.test"):
            return Drop(self.name, "vendor test lead")
        data = {"first_name": payload.get("first_name", ""), "tier": (self.env or {}).get("TIER", "")}
        return TrackdriveCall("create_lead", "POST", "/api/v1/leads", {},
                              {"lead_token": "${ACME_LEAD_TOKEN}", "caller_id": payload["phone"], "data": data},
                              secrets={"lead_token": "ACME_LEAD_TOKEN"})


def fake_loader(path: Path, *, env: dict[str, str] | None = None) -> FakeSource:
    return FakeSource(Path(path), env)
