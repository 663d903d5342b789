"""Retry, replay and purge: for one lead or a filtered selection, confirmed, then audited.

A GET shows what an action would touch and how many leads; only the POST from that
page (with the session's CSRF token) acts. Each action is one audit entry in the
store: who, when, what, how many, and the filter. A selection larger than
MAX_SELECTION is refused: narrow the filter, or use ``relay outbox`` for bulk work.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from flask import render_template, request

from relay.errors import BadRequest, NotFound
from relay.intake.replay import replay
from relay.pii import mask_text
from relay.store.base import AuditEntry, Lead
from relay.web.console import bp
from relay.web.console.access import actor, require_change
from relay.web.console.filters import read_filter
from relay.web.state import RelayState, relay_state

MAX_SELECTION = 1000
ACTIONS = {
    "retry": ("Retry now", "dead leads are sent to Trackdrive again at once, their retry schedule restarted",
              ("dead",)),
    "replay": ("Replay through the current mapping",
               "refused and dead leads are mapped again by today's mapping; queued ones are sent",
               ("rejected", "dead")),
    "purge": ("Purge", "the leads, their attempts and dedupe keys are deleted for good", None),
}


@dataclass(frozen=True)
class Selection:
    action: str
    description: str  # the filter or the lead id, as the audit log keeps it
    leads: list[Lead]  # the ones the action applies to
    matched: int  # every lead the filter matched, eligible or not
    args: dict[str, str]  # to carry into the confirming POST


@bp.get("/actions/<action>")
def confirm(action: str) -> str:
    selection = select(relay_state(), action)
    return render_template("console/confirm.html", selection=selection, title=ACTIONS[action][0],
                           effect=ACTIONS[action][1], limit=MAX_SELECTION)


@bp.post("/actions/<action>")
def run(action: str) -> str:
    require_change()
    state = relay_state()
    selection = select(state, action)
    done, detail = perform(state, selection)
    state.store.record_audit(AuditEntry(at=time.time(), actor=actor(), action=action,
                                        selection=selection.description, lead_count=done, detail=detail))
    return render_template("console/done.html", selection=selection, title=ACTIONS[action][0], done=done,
                           detail=detail)


def select(state: RelayState, action: str) -> Selection:
    if action not in ACTIONS:
        raise NotFound(f"no action {action!r}: use one of {', '.join(ACTIONS)}", field="action")
    eligible = ACTIONS[action][2]
    lead_id = (request.values.get("id") or "").strip()[:64]
    if lead_id:
        lead = state.store.get(lead_id)
        if lead is None:
            raise NotFound(f"no lead with id {lead_id!r}", field="id")
        leads = [lead] if eligible is None or lead.status in eligible else []
        return Selection(action, f"id={lead_id}", leads, 1, {"id": lead_id})
    chosen = read_filter(request.values)
    matched = state.store.search(chosen.query, limit=MAX_SELECTION + 1)
    if len(matched) > MAX_SELECTION:
        raise BadRequest(f"this filter selects more than {MAX_SELECTION} leads; an action touches at most "
                         f"{MAX_SELECTION}: narrow it (source, status, time range) or use relay outbox",
                         field="selection", rule="max_leads", limit=MAX_SELECTION)
    leads = [lead for lead in matched if eligible is None or lead.status in eligible]
    return Selection(action, chosen.describe(), leads, len(matched), {**chosen.given})


def perform(state: RelayState, selection: Selection) -> tuple[int, str]:
    ids = [lead.id for lead in selection.leads]
    if selection.action == "retry":
        count = state.store.requeue(ids, status="dead", now=time.time())
        return count, f"requeued {count} of {len(ids)} dead lead(s)"
    if selection.action == "purge":
        count = state.store.delete(ids)
        return count, f"deleted {count} lead(s)"
    return replay_all(state, selection.leads)


def replay_all(state: RelayState, leads: list[Lead]) -> tuple[int, str]:
    changed, notes = 0, []
    for lead in leads:
        source = state.registry.get(lead.source)
        if source is None:
            notes.append(f"{lead.id}: no mapping for source {lead.source}")
            continue
        result = replay(state.store, source, lead)
        changed += result.changed
        notes.append(f"{lead.id}: {result.before} -> {result.after} ({mask_text(result.note)})")
    return changed, "; ".join(notes[:20]) + (" …" if len(notes) > 20 else "")
