"""A received request for backend-specific store tests; the contract suite has its own, fuller one."""
from __future__ import annotations

from typing import Any

from relay.store.base import Received

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def received(**overrides: Any) -> Received:
    values: dict[str, Any] = dict(
        source="acme", received_at=T0, method="POST", content_type="application/json",
        query="", headers={}, body=b'{"phone": "5555550100"}', client_addr="203.0.113.7",
        status="queued", call={"action": "create_lead"})
    values.update(overrides)
    return Received(**values)
