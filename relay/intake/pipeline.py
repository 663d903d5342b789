"""What a received request becomes, before anything is stored: zero, one or many lead drafts.

parse → split into leads → map each (now, or later when the source fetches)
→ dedupe key for each. Nothing here touches the network or a database, so the
web hook, ``relay preview``, ``relay mappings test`` and replay all run this
same code, and a mapping test means what production does.

A crash of the parser or of a mapping is not an answer to the vendor: the
draft becomes a refusal with rule ``mapping_error`` and carries the exception,
so the caller can store the lead for replay and log the traceback with its id.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping
from urllib.parse import unquote_plus

from relay.errors import LeadRefused, RelayError
from relay.intake import auth
from relay.mapping import conditions
from relay.mapping.model import Drop, InboundRequest, InboundSettings, MapOutcome, Refusal, TrackdriveCall
from relay.mapping.source import Source

MAPPING_ERROR = "mapping_error"
NO_LEADS = "no_leads"
FETCH_ID_MISSING = "fetch_id_missing"


@dataclass(frozen=True)
class Deferred:
    """The lead is mapped later: the delivery worker first fetches it from the vendor's API."""

    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "stage": "fetch"}


LeadOutcome = TrackdriveCall | Refusal | Drop | Deferred


@dataclass(frozen=True)
class Draft:
    """One lead of a request as intake sees it, before it is stored."""

    index: int
    payload: Any  # the lead's own part of the request (the whole payload unless the source splits)
    outcome: LeadOutcome
    dedupe_key: str | None = None
    crash: BaseException | None = None  # the defect behind a mapping_error refusal

    @property
    def status(self) -> str:
        return status_of(self.outcome)


@dataclass(frozen=True)
class Evaluation:
    drafts: tuple[Draft, ...]
    split: bool  # the source splits requests: the answer lists every lead

    @property
    def crashes(self) -> list[Draft]:
        return [draft for draft in self.drafts if draft.crash is not None]


def status_of(outcome: LeadOutcome) -> str:
    """The status a lead with this outcome is stored with."""
    if isinstance(outcome, TrackdriveCall):
        return "queued"
    if isinstance(outcome, Deferred):
        return "fetching"
    if isinstance(outcome, Refusal):
        return "rejected"
    if isinstance(outcome, Drop):
        return "dropped"
    raise TypeError(f"unexpected lead outcome {type(outcome).__name__}")


def evaluate(source: Source, request: InboundRequest, *, env: Mapping[str, str] | None = None) -> Evaluation:
    """Every lead of ``request``. An unreadable body raises its RelayError (a 4xx, nothing stored).

    With ``env`` (the relay's environment, a test case's) a key the vendor sends in the body is
    checked (401 when it does not match) and ``${ENV}`` values in conditions read from it.
    Without, as in a preview or a replay, the key is only removed.
    """
    inbound = source.inbound
    try:
        query = mapped_query(inbound, request.query)
        payload = source.parse(request if query == request.query else replace(request, query=query))
    except RelayError:
        raise
    except Exception as crash:  # a parser defect: kept for replay rather than answered 400
        return Evaluation((crashed(source, 0, None, crash),), source.split is not None)
    if inbound.body_key is not None:
        payload = auth.take_body_key(inbound.body_key, payload, env)
    with conditions.environment(env):
        return evaluate_payload(source, payload, request.headers)


def mapped_query(inbound: InboundSettings, query: str) -> str:
    """The query parameters that become payload fields.

    A signature covers the body, not what anyone appends to the URL: on a signed source only the
    parameters ``inbound.query`` names are kept, so a captured request replayed with ``?campaign=x``
    added reaches Trackdrive unchanged.
    """
    if inbound.query is None and not inbound.signed:
        return query
    allowed = inbound.query or ()
    if not query or not allowed:
        return ""
    return "&".join(part for part in query.split("&") if unquote_plus(part.partition("=")[0]) in allowed)


def evaluate_payload(source: Source, payload: Any, headers: Mapping[str, str]) -> Evaluation:
    splitting = source.split is not None
    try:
        parts = source.split_leads(payload)
    except Exception as crash:
        return Evaluation((crashed(source, 0, payload, crash),), splitting)
    if not parts:
        # Most likely the split path no longer fits what the vendor sends: keep the request.
        refusal = Refusal(source.name, "split", NO_LEADS, f"the request holds no lead: split path "
                          f"{source.split.text if source.split else ''} matched nothing")
        return Evaluation((Draft(0, payload, refusal),), splitting)
    many = len(parts) > 1
    drafts = tuple(draft_for(source, index, part, headers, many) for index, part in enumerate(parts))
    return Evaluation(drafts, splitting)


def draft_for(source: Source, index: int, part: Any, headers: Mapping[str, str], many: bool) -> Draft:
    key = dedupe_key(source, part, headers, index if many else None)
    if source.fetch is not None:
        missing = source.fetch.missing_ids(part)
        if missing:  # nothing to fetch with: refused now, kept for replay, never a dead fetch later
            refusal = Refusal(source.name, "fetch", FETCH_ID_MISSING,
                              f"the notification has no {', '.join(missing)}: there is no lead to fetch",
                              tuple(missing))
            return Draft(index, part, refusal, None)
        return Draft(index, part, Deferred(source.name), key)
    outcome, crash = map_lead(source, part)
    return Draft(index, part, outcome, key, crash)


def map_lead(source: Source, payload: Any) -> tuple[MapOutcome, BaseException | None]:
    """The lead's outcome; a crash becomes a ``mapping_error`` refusal carrying the exception."""
    try:
        return source.map_payload(payload), None
    except LeadRefused as refused:
        return refusal_from_error(source.name, refused), None
    except Exception as crash:
        return mapping_error(source.name), crash


def crashed(source: Source, index: int, payload: Any, crash: BaseException) -> Draft:
    return Draft(index, payload, mapping_error(source.name), None, crash)


def mapping_error(source: str) -> Refusal:
    return Refusal(source=source, field="", rule=MAPPING_ERROR,
                   message="the mapping failed on this lead; it is kept for replay once the mapping is fixed")


def refusal_from_error(source: str, refused: LeadRefused) -> Refusal:
    details = refused.details
    return Refusal(source=source, field=str(details.get("field", "")), rule=str(details.get("rule", "")),
                   message=refused.message, paths=tuple(details.get("paths") or ()))


def dedupe_key(source: Source, payload: Any, headers: Mapping[str, str], index: int | None) -> str | None:
    """The lead's dedupe key; a header key covers every lead of a batch, one per position."""
    if source.inbound.idempotency_window_s <= 0 or source.idempotency is None:
        return None
    try:
        key = source.idempotency_key(payload, headers)
    except Exception:  # a key that cannot be read means no dedupe, never a failed request
        return None
    if not key:
        return None
    if index is not None and source.idempotency.header is not None:
        return f"{key}#{index}"
    return key
