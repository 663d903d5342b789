"""Replay: a stored request goes through today's mapping again, by the same pipeline as the hook.

The stored request is evaluated as if it had just arrived; the lead takes the
outcome of its own position in the request (``batch_index``). The dedupe rule
holds here too: a lead whose key another live lead now holds (the vendor sent
the corrected lead meanwhile) is not queued a second time.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from relay.errors import RelayError
from relay.intake.pipeline import Deferred, Draft, evaluate
from relay.mapping.model import InboundRequest, Refusal, TrackdriveCall
from relay.mapping.source import Source
from relay.store.base import ACCEPTED_STATUSES, Lead, Store


@dataclass(frozen=True)
class Replayed:
    lead_id: str
    before: str  # status before the replay
    after: str  # status after it (== before when nothing changed)
    note: str  # the call's action, the refusal's message or why nothing changed
    changed: bool


def stored_request(lead: Lead) -> InboundRequest:
    return InboundRequest(method=lead.method, content_type=lead.content_type, body=lead.body,
                          query=lead.query, headers=dict(lead.headers), client_addr=lead.client_addr)


def draft_now(source: Source, lead: Lead) -> Draft:
    """The lead's draft under today's mapping; a request that now reads differently is a refusal."""
    try:
        evaluation = evaluate(source, stored_request(lead))
    except RelayError as exc:
        return Draft(lead.batch_index, None, Refusal(source.name, "payload", exc.code, exc.message))
    drafts = evaluation.drafts
    if lead.batch_index >= len(drafts) or len(drafts) != lead.batch_size:
        return Draft(lead.batch_index, None, Refusal(
            source.name, "split", "batch_changed",
            f"the request now gives {len(drafts)} lead(s) where it gave {lead.batch_size}"))
    return drafts[lead.batch_index]


def fields_of(draft: Draft) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    outcome = draft.outcome
    if isinstance(outcome, TrackdriveCall):
        return "queued", outcome.to_dict(), None
    if isinstance(outcome, Deferred):
        return "fetching", None, None
    return draft.status, None, outcome.to_dict()


def replay(store: Store, source: Source, lead: Lead, *, dry_run: bool = False,
           now: float | None = None) -> Replayed:
    now = time.time() if now is None else now
    draft = draft_now(source, lead)
    status, call, error = fields_of(draft)
    note = call["action"] if call else (error or {}).get("message") or (error or {}).get("reason", "") or status
    key = lead.dedupe_key
    if status in ACCEPTED_STATUSES and key:
        holder = store.dedupe_holder(lead.source, key, now)
        if holder is not None and holder != lead.id:
            return Replayed(lead.id, lead.status, lead.status, f"lead {holder} already holds its dedupe key",
                            changed=False)
    if dry_run:
        return Replayed(lead.id, lead.status, status, note, changed=False)
    window = source.inbound.idempotency_window_s if key else 0.0
    if not store.remap(lead.id, status, call, error, source.version, now, dedupe_window_s=window):
        return Replayed(lead.id, lead.status, lead.status, "being delivered right now", changed=False)
    return Replayed(lead.id, lead.status, status, note, changed=True)
