"""The console's read pages: overview, leads, one lead, the audit log."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from flask import render_template, request

from relay.errors import NotFound
from relay.outcomes import LEAD_STATUSES
from relay.pii import mask_body, mask_secrets, mask_text, mask_value
from relay.store.base import PENDING_STATUSES, Lead, SourceActivity
from relay.web.admin import log_reveal
from relay.web.console import bp
from relay.web.console.filters import parse_cursor, read_filter
from relay.web.state import RelayState, relay_state

PAGE_SIZE = 50
DAY_S = 86_400.0
LAG_WARNING_S = 300.0  # a lead waiting longer than this for delivery is a problem worth showing
OVERVIEW_COLUMNS = ("received", "delivered", "rejected", "dropped", "duplicates", "dead", "retry",
                    "fetching", "queued")


# --- overview ---

@dataclass
class SourceRow:
    source: str
    counts: dict[str, int]
    last_received_at: float | None
    version: str | None
    load_problems: list[str]
    missing_env: list[str]
    breaker: str
    lag_s: float | None
    problems: list[str] = field(default_factory=list)


@bp.get("/")
def overview() -> str:
    state = relay_state()
    now = time.time()
    names = sorted(set(state.registry.names()))
    rows = [source_row(state, activity, now) for activity in state.store.activity(now - DAY_S, names)]
    return render_template("console/overview.html", rows=rows, columns=OVERVIEW_COLUMNS, now=now,
                           breaker_note=breaker_note(state))


def source_row(state: RelayState, activity: SourceActivity, now: float) -> SourceRow:
    source = state.registry.get(activity.source)
    counts = dict(activity.by_status)
    counts["received"] = sum(activity.by_status.values()) + activity.duplicates
    counts["duplicates"] = activity.duplicates
    lag = None if activity.oldest_pending_at is None else max(0.0, now - activity.oldest_pending_at)
    row = SourceRow(
        source=activity.source, counts=counts, last_received_at=activity.last_received_at,
        version=str(source.version) if source is not None and source.version else None,
        load_problems=[str(problem) for problem in state.registry.problems_for(activity.source)],
        missing_env=list(source.missing_env(state.env)) if source is not None else [],
        breaker=breaker_state(state), lag_s=lag)
    row.problems = problems_of(row)
    return row


def problems_of(row: SourceRow) -> list[str]:
    problems = []
    if row.version is None:
        problems.append("mapping not loaded" if row.load_problems or row.counts["received"] == 0
                        else "no mapping for this source")
    if row.load_problems:
        problems.append(f"{len(row.load_problems)} mapping problem(s)")
    if row.missing_env:
        problems.append("secrets missing: " + ", ".join(row.missing_env))
    if row.counts.get("dead"):
        problems.append(f"{row.counts['dead']} dead")
    if row.breaker == "open":
        problems.append("delivery paused: circuit breaker open")
    if row.lag_s is not None and row.lag_s > LAG_WARNING_S:
        problems.append(f"delivery lag {format_age(row.lag_s)}")
    return problems


def breaker_state(state: RelayState) -> str:
    """This worker's breaker for the default Trackdrive address (each worker keeps its own)."""
    dispatcher = state.dispatcher
    breakers = getattr(dispatcher, "breakers", None)
    if breakers is None:
        return "not delivering here"
    parts = urlsplit(state.settings.trackdrive_base_url)  # keyed as relay.delivery.breaker.base_url_key does
    return str(breakers.state_of(f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}".lower()))


def breaker_note(state: RelayState) -> str:
    return "" if state.dispatcher is not None else "this process does not deliver (RELAY_DELIVERY off)"


# --- leads ---

@bp.get("/leads")
def leads() -> str:
    state = relay_state()
    chosen = read_filter(request.args)
    after = parse_cursor(request.args.get("after", ""))
    page = state.store.search(replace(chosen.query, after=after), limit=PAGE_SIZE + 1)
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    next_after = f"{page[-1].received_at!r}_{page[-1].id}" if more and page else ""
    return render_template("console/leads.html", leads=[row_view(lead) for lead in page], chosen=chosen,
                           next_after=next_after, sources=sorted(state.registry.names()),
                           statuses=LEAD_STATUSES, first_page=after is None)


def row_view(lead: Lead) -> dict[str, Any]:
    return {"id": lead.id, "source": lead.source, "status": lead.status, "received_at": lead.received_at,
            "caller_id": mask_text(lead.caller_id or ""), "email": mask_text(lead.email or ""),
            "attempts": lead.attempts, "response_status": lead.response_status,
            "refusal": (lead.error or {}).get("field") or (lead.error or {}).get("reason") or ""}


# --- one lead ---

@bp.get("/leads/<lead_id>")
def lead(lead_id: str) -> str:
    return render_lead(lead_id, reveal=False)


@bp.post("/leads/<lead_id>/reveal")
def reveal(lead_id: str) -> str:
    return render_lead(lead_id, reveal=True)


def render_lead(lead_id: str, *, reveal: bool) -> str:
    store = relay_state().store
    found = store.get(lead_id[:64])
    if found is None:
        raise NotFound(f"no lead with id {lead_id[:64]!r}", field="lead_id")
    if reveal:
        log_reveal(found.id)
    siblings = [] if found.batch_size <= 1 else [
        sibling for sibling in store.list(batch_id=found.batch_id, limit=1000) if sibling.id != found.id]
    attempts = [attempt if reveal else replace(attempt, response_body=mask_text(attempt.response_body or ""))
                for attempt in store.attempts(found.id)]
    refusal = (found.error or {}) if reveal else mask_value(found.error or {})
    return render_template("console/lead.html", lead=found, revealed=reveal, shown=lead_shown(found, reveal),
                           refusal=refusal, attempts=attempts, pending=found.status in PENDING_STATUSES,
                           siblings=sorted(siblings, key=lambda sibling: sibling.batch_index))


def lead_shown(lead: Lead, reveal: bool) -> dict[str, str]:
    """Each part of the lead as text: personal data masked unless revealed; secrets always masked."""
    def shown(value: Any) -> str:
        if value is None:
            return ""
        return pretty(value if reveal else mask_value(value))

    body = (mask_secrets(lead.body.decode("utf-8", errors="replace")) if reveal else mask_body(lead.body))
    return {"headers": shown(lead.headers), "query": lead.query if reveal else mask_text(lead.query),
            "body": pretty_text(body), "call": shown(lead.call), "error": shown(lead.error),
            "fetched": shown(lead.fetched), "response_body": (lead.response_body or "") if reveal
            else mask_text(lead.response_body or "")}


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def pretty_text(text: str) -> str:
    try:
        return pretty(json.loads(text))
    except ValueError:
        return text


# --- audit ---

@bp.get("/audit")
def audit() -> str:
    return render_template("console/audit.html", entries=relay_state().store.audit_log(limit=200))


# --- template helpers ---

def format_time(epoch: float | None) -> str:
    if epoch is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * DAY_S:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / DAY_S:.1f} days"


@bp.app_template_filter("when")
def when_filter(epoch: float | None) -> str:
    return format_time(epoch)


@bp.app_template_filter("age")
def age_filter(seconds: float | None) -> str:
    return format_age(seconds)
