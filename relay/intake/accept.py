"""``accept()``: a received request becomes committed leads, then goes to delivery.

evaluate (parse, split, map, dedupe keys) → persist every lead of the request
in one transaction → hand each new lead this process can send at once to its
dispatcher. Nothing is answered before the commit: anything short of it is a
503 so the vendor retries.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Protocol

from relay import metrics
from relay.errors import StoreUnavailable
from relay.intake.auth import masked_body
from relay.intake.pipeline import Deferred, Draft, Evaluation, evaluate
from relay.mapping.model import InboundRequest, TrackdriveCall
from relay.mapping.source import Source
from relay.store.base import Lead, Received, Store

log = logging.getLogger("relay.intake")


class DeliveryDesk(Protocol):
    """The part of a dispatcher intake hands leads to (relay.delivery.dispatcher.Dispatcher)."""

    owner: str

    def reserve(self) -> bool: ...

    def unreserve(self) -> None: ...

    def deliver_leased(self, lead: Lead) -> Future[Any]: ...


@dataclass(frozen=True)
class Stored:
    lead: Lead
    created: bool  # False: a live lead already held the dedupe key; ``lead`` is that one


@dataclass(frozen=True)
class Accepted:
    source: str
    leads: tuple[Stored, ...]
    split: bool
    deliveries: dict[str, Future[Any]] = field(default_factory=dict)  # by lead id, sent at once here


@dataclass(frozen=True)
class Intake:
    """What accepting needs besides the request: the outbox and, in a worker, its dispatcher."""

    store: Store
    lease_s: float = 60.0
    desk: DeliveryDesk | None = None


def accept(intake: Intake, source: Source, request: InboundRequest, *, request_id: str = "",
           env: Mapping[str, str] | None = None) -> Accepted:
    """With ``env`` a key in the body is checked, and masked in the stored body."""
    evaluation = evaluate(source, request, env=env)
    if env is not None and source.inbound.body_key is not None:
        request = replace(request, body=masked_body(request.body, source.inbound.body_key, env))
    received_at = time.time()
    # A lead to fetch is handed over too: the worker fetches it at once instead of at the next poll.
    held = [reserve(intake.desk) if isinstance(draft.outcome, (TrackdriveCall, Deferred)) else False
            for draft in evaluation.drafts]
    rows = [received_row(source, request, draft, len(evaluation.drafts), received_at=received_at,
                         request_id=request_id, owner=intake.desk.owner if hold and intake.desk else None,
                         lease_s=intake.lease_s)
            for draft, hold in zip(evaluation.drafts, held, strict=True)]
    try:
        results = persist(intake.store, rows)
    except BaseException:
        for hold in held:
            if hold and intake.desk is not None:
                intake.desk.unreserve()
        raise
    stored = tuple(Stored(lead, created) for lead, created in results)
    report_crashes(source, evaluation, stored, request_id)
    deliveries = hand_over(intake.desk, stored, held)
    return Accepted(source.name, stored, evaluation.split, deliveries)


def reserve(desk: DeliveryDesk | None) -> bool:
    return desk is not None and desk.reserve()


def received_row(source: Source, request: InboundRequest, draft: Draft, batch_size: int, *,
                 received_at: float, request_id: str, owner: str | None, lease_s: float) -> Received:
    outcome = draft.outcome
    call = outcome.to_dict() if isinstance(outcome, TrackdriveCall) else None
    error = None if call is not None or isinstance(outcome, Deferred) else outcome.to_dict()
    return Received(
        source=source.name, received_at=received_at, method=request.method,
        content_type=request.content_type, query=request.query, headers=dict(request.headers),
        body=request.body, client_addr=request.client_addr, status=draft.status, call=call, error=error,
        mapping_version=str(source.version or ""), dedupe_key=draft.dedupe_key,
        dedupe_window_s=source.inbound.idempotency_window_s if draft.dedupe_key else 0.0,
        request_id=request_id, lease_owner=owner, lease_until=received_at + lease_s if owner else None,
        batch_index=draft.index, batch_size=batch_size)


def persist(store: Store, rows: list[Received]) -> list[tuple[Lead, bool]]:
    """Every lead of one request in one transaction; anything short of a commit is a 503."""
    try:
        return store.insert_batch(rows)
    except StoreUnavailable:
        raise
    except Exception:
        log.exception("outbox insert failed for source %s", rows[0].source if rows else "?")
        raise StoreUnavailable("the outbox could not store the lead; retry later",
                               source=rows[0].source if rows else None) from None


def report_crashes(source: Source, evaluation: Evaluation, stored: tuple[Stored, ...],
                   request_id: str) -> None:
    """A defect in a parser or mapping is loud: traceback and lead id in the log, and a metric."""
    for draft in evaluation.crashes:
        crash = draft.crash
        assert crash is not None
        lead_id = stored[draft.index].lead.id if draft.index < len(stored) else None
        log.error("mapping for source %s crashed on lead %s; it is stored as rejected for replay",
                  source.name, lead_id, exc_info=(type(crash), crash, crash.__traceback__),
                  extra={"source": source.name, "lead_id": lead_id, "request_id": request_id,
                         "event": "mapping_crash"})
        metrics.record_mapping_crash(source.name)


def hand_over(desk: DeliveryDesk | None, stored: tuple[Stored, ...], held: list[bool]) -> dict[str, Future[Any]]:
    """Send at once what was stored leased to this process; give back slots nobody uses."""
    deliveries: dict[str, Future[Any]] = {}
    if desk is None:
        return deliveries
    for item, hold in zip(stored, held, strict=True):
        if not hold:
            continue
        lead = item.lead
        if not item.created or lead.status not in ("queued", "fetching") or lead.lease_owner != desk.owner:
            desk.unreserve()
            continue
        try:
            deliveries[lead.id] = desk.deliver_leased(lead)
        except Exception:
            log.exception("could not hand over lead %s; its lease expires and the poller sends it", lead.id)
    return deliveries
