"""What every outbox backend shares: the leads row's shape and how a row becomes a Lead.

The backends differ in SQL dialect and in how they wait for a write turn; the
row itself, its JSON columns and the checks on a settlement are one thing.
"""
from __future__ import annotations

import json
import time
from typing import Any, Mapping, Sequence

from relay.store.base import ACCEPTED_STATUSES, Lead, Received, Settlement

RESPONSE_BODY_LIMIT = 64 * 1024  # bytes of a Trackdrive answer worth keeping
SETTLE_RESULTS = ("delivered", "retry", "dead")
REMAP_STATUSES = ("queued", "fetching", "rejected", "dropped")
# What the worker may make of a fetched lead: send it, or refuse or drop it.
RESOLVE_STATUSES = ("queued", "rejected", "dropped")

LEAD_FIELDS = ("id", "source", "status", "received_at", "received_day", "method",
               "content_type", "query_string", "headers_json", "body", "client_addr",
               "call_json", "error_json", "mapping_version", "dedupe_key", "attempts",
               "next_attempt_at", "lease_owner", "lease_until", "response_status",
               "response_body", "delivered_at", "updated_at", "request_id", "batch_id",
               "batch_index", "batch_size", "fetched_json", "caller_id", "email")
LEAD_COLUMNS = ", ".join(LEAD_FIELDS)


def new_batch_rows(lead_ids: Sequence[str], received: Sequence[Received]) -> list[dict[str, Any]]:
    """The rows of one request's leads; those without a batch_id share the first lead's id."""
    batch_id = lead_ids[0] if lead_ids else ""
    return [new_lead_row(lead_id, item, item.batch_id or batch_id)
            for lead_id, item in zip(lead_ids, received, strict=True)]


def new_lead_row(lead_id: str, received: Received, batch_id: str = "") -> dict[str, Any]:
    """The leads row for a new lead, as the database returns it (times as floats)."""
    received_at = float(received.received_at)
    # A lead waiting for the worker is due at once; a time keeps the claim index ordered.
    next_attempt_at = received_at if received.status in ACCEPTED_STATUSES else None
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
            "updated_at": received_at, "request_id": received.request_id,
            "batch_id": batch_id or received.batch_id or lead_id,
            "batch_index": received.batch_index, "batch_size": received.batch_size,
            "fetched_json": None, **contact_columns(received.call)}


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
        updated_at=row["updated_at"], request_id=row["request_id"] or "",
        batch_id=row["batch_id"], batch_index=row["batch_index"], batch_size=row["batch_size"],
        fetched=loads(row["fetched_json"]), caller_id=row["caller_id"], email=row["email"])


def contact_columns(call: Mapping[str, Any] | None) -> dict[str, str | None]:
    """The searchable contact of a lead: its call's caller_id and email, normalised.

    The mapping already wrote caller_id in E.164; an email is compared without case.
    """
    if not call:
        return {"caller_id": None, "email": None}
    params = {**(call.get("query") or {}), **(call.get("body") or {})}
    caller_id = _text(params.get("caller_id"))
    email = _text(params.get("email"))
    return {"caller_id": caller_id, "email": normal_email(email) if email else None}


def normal_email(text: str) -> str | None:
    return text.strip().lower() or None


def _text(value: Any) -> str | None:
    return None if value is None else str(value).strip() or None


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


def sql_list(values: Sequence[str]) -> str:
    """A parenthesised list of SQL string literals, for the store's own fixed status names."""
    return "(" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + ")"


def check_settlement(settlement: Settlement) -> None:
    if settlement.result not in SETTLE_RESULTS:
        raise ValueError(f"settlement result must be one of {', '.join(SETTLE_RESULTS)}")
    if settlement.result == "retry" and settlement.next_attempt_at is None:
        raise ValueError("a retry settlement needs next_attempt_at")


def check_remap(status: str, call: dict[str, Any] | None) -> None:
    if status not in REMAP_STATUSES:
        raise ValueError(f"remap status must be one of {', '.join(REMAP_STATUSES)}")
    if status == "queued" and call is None:
        raise ValueError("a queued lead needs a call")


def check_resolve(status: str, call: dict[str, Any] | None) -> None:
    if status not in RESOLVE_STATUSES:
        raise ValueError(f"resolve status must be one of {', '.join(RESOLVE_STATUSES)}")
    if status == "queued" and call is None:
        raise ValueError("a queued lead needs a call")
