"""From a received request to one committed outbox row: parse, map, dedupe, persist."""
from __future__ import annotations

import logging
import time
from typing import Any, Mapping

from relay.errors import LeadRefused, MalformedBody, RelayError, StoreUnavailable
from relay.mapping.model import Drop, InboundRequest, MapOutcome, Refusal, TrackdriveCall
from relay.store.base import Lead, Received, Store
from relay.web.registry import Source

log = logging.getLogger("relay.web")


def parse_payload(source: Source, inbound_request: InboundRequest) -> dict[str, Any]:
    try:
        return source.parse(inbound_request)
    except RelayError:
        raise
    except Exception:
        # Junk must get a 400 the vendor can read, whatever the parser tripped on.
        log.exception("parser for source %s failed on a request body", source.name)
        raise MalformedBody("the request body could not be read", source=source.name,
                            content_type=inbound_request.content_type or None) from None


def map_payload(source: Source, payload: dict[str, Any]) -> MapOutcome:
    try:
        outcome = source.map_payload(payload)
        if isinstance(outcome, TrackdriveCall) and outcome.notes:
            log.warning("mapping notes for source %s: %s", source.name, "; ".join(outcome.notes),
                        extra={"source": source.name})
        return outcome
    except LeadRefused as refused:
        return refusal_from_error(source.name, refused)
    except RelayError:
        raise
    except Exception:
        # Stored as rejected rather than lost: it can be replayed once the mapping is fixed.
        log.exception("mapping for source %s failed on a payload", source.name)
        return Refusal(source=source.name, field="", rule="mapping_error",
                       message="the mapping failed on this payload; it is kept for replay")


def refusal_from_error(source: str, refused: LeadRefused) -> Refusal:
    details = refused.details
    return Refusal(source=source, field=str(details.get("field", "")), rule=str(details.get("rule", "")),
                   message=refused.message, paths=tuple(details.get("paths") or ()))


def dedupe_key(source: Source, payload: dict[str, Any], headers: Mapping[str, str]) -> str | None:
    if source.inbound.idempotency_window_s <= 0:
        return None
    try:
        return source.idempotency_key(payload, headers) or None
    except Exception:
        log.exception("idempotency key for source %s failed; the lead is stored without one", source.name)
        return None


def outcome_fields(outcome: MapOutcome) -> dict[str, Any]:
    if isinstance(outcome, TrackdriveCall):
        return {"status": "queued", "call": outcome.to_dict()}
    if isinstance(outcome, Refusal):
        return {"status": "rejected", "error": outcome.to_dict()}
    if isinstance(outcome, Drop):
        return {"status": "dropped", "error": outcome.to_dict()}
    raise TypeError(f"unexpected mapping outcome {type(outcome).__name__}")


def build_received(source: Source, inbound_request: InboundRequest, outcome: MapOutcome, *,
                   key: str | None, request_id: str, lease_owner: str | None = None,
                   lease_s: float = 0.0) -> Received:
    received_at = time.time()
    return Received(
        source=source.name, received_at=received_at, method=inbound_request.method,
        content_type=inbound_request.content_type, query=inbound_request.query,
        headers=dict(inbound_request.headers), body=inbound_request.body,
        client_addr=inbound_request.client_addr, mapping_version=str(source.version or ""),
        dedupe_key=key, dedupe_window_s=source.inbound.idempotency_window_s if key else 0.0,
        request_id=request_id, lease_owner=lease_owner,
        lease_until=received_at + lease_s if lease_owner else None, **outcome_fields(outcome),
    )


def persist(store: Store, received: Received) -> tuple[Lead, bool]:
    """One transaction; anything short of a commit is a 503 so the vendor retries."""
    try:
        return store.insert(received)
    except StoreUnavailable:
        raise
    except Exception:
        log.exception("outbox insert failed for source %s", received.source)
        raise StoreUnavailable("the outbox could not store the lead; retry later",
                               source=received.source) from None
