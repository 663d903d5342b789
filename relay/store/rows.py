"""What every outbox backend shares: the leads row's shape and how a row becomes a Lead.

The backends differ in SQL dialect and in how they wait for a write turn; the
row itself, its JSON columns and the checks on a settlement are one thing.
"""
from __future__ import annotations

import json
import time
from typing import Any, Mapping

from relay.store.base import Lead, Received, Settlement

RESPONSE_BODY_LIMIT = 64 * 1024  # bytes of a Trackdrive answer worth keeping
SETTLE_RESULTS = ("delivered", "retry", "dead")
REMAP_STATUSES = ("queued", "rejected", "dropped")

LEAD_FIELDS = ("id", "source", "status", "received_at", "received_day", "method",
               "content_type", "query_string", "headers_json", "body", "client_addr",
               "call_json", "error_json", "mapping_version", "dedupe_key", "attempts",
               "next_attempt_at", "lease_owner", "lease_until", "response_status",
               "response_body", "delivered_at", "updated_at", "request_id")
LEAD_COLUMNS = ", ".join(LEAD_FIELDS)


def new_lead_row(lead_id: str, received: Received) -> dict[str, Any]:
    """The leads row for a new lead, as the database returns it (times as floats)."""
    received_at = float(received.received_at)
    # A queued lead is due at once; giving it a time keeps the claim index ordered.
    next_attempt_at = received_at if received.status == "queued" else None
    lease_owner, lease_until = received.initial_lease()
    return {"id": lead_id, "source": received.source, "status": received.status,
            "received_at": received_at, "received_day": utc_day(received_at),
            "method": received.method, "content_type": received.content_type,
            "query_string": received.query, "headers_json": dumps(dict(received.headers)),
            "body": bytes(received.body), "client_addr": received.client_addr,
            "call_json": dumps(received.call), "error_json": dumps(received.error),
            "mapping_version": received.mapping_version, "dedupe_key": received.dedupe_key,
            "attempts": 0, "next_attempt_at": next_attempt_at, "lease_owner": lease_owner,
            "lease_until": None if lease_until is None else float(lease_until),
            "response_status": None, "response_body": None, "delivered_at": None,
            "updated_at": received_at, "request_id": received.request_id}


def lead_from_row(row: Mapping[str, Any]) -> Lead:
    """A Lead from a leads row as read, or as just written (a new lead is not read back)."""
    return Lead(
        id=row["id"], source=row["source"], status=row["status"],
        received_at=row["received_at"], method=row["method"],
        content_type=row["content_type"], query=row["query_string"],
        headers=loads(row["headers_json"]) or {}, body=bytes(row["body"]),
        client_addr=row["client_addr"], call=loads(row["call_json"]),
        error=loads(row["error_json"]), mapping_version=row["mapping_version"],
        dedupe_key=row["dedupe_key"], attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"], lease_owner=row["lease_owner"],
        lease_until=row["lease_until"], response_status=row["response_status"],
        response_body=row["response_body"], delivered_at=row["delivered_at"],
        updated_at=row["updated_at"], request_id=row["request_id"] or "")


def dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def utc_day(epoch: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def truncate(text: str | None, limit: int = RESPONSE_BODY_LIMIT) -> str | None:
    if text is None:
        return None
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def check_settlement(settlement: Settlement) -> None:
    if settlement.result not in SETTLE_RESULTS:
        raise ValueError(f"settlement result must be one of {', '.join(SETTLE_RESULTS)}")
    if settlement.result == "retry" and settlement.next_attempt_at is None:
        raise ValueError("a retry settlement needs next_attempt_at")
