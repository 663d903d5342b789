"""Every way a vendor request can end, in one table: the lead's status, the HTTP answer, the metric label.

A request either stores a lead (its outcome is the lead's status, or ``duplicate``
when its idempotency key was seen) or fails with a :class:`relay.errors.RelayError`
(its outcome is the error's code). The answer the vendor gets, the label counted in
``relay_requests_total`` and the status ``relay outbox`` shows all come from here,
so they cannot disagree. Metric labels are coarser than codes and stable: alerts and
dashboards select on them.

A code missing from the table is a defect; the test suite walks every RelayError
subclass to catch it. At run time it is counted as ``error`` rather than guessed at.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ERROR_LABEL",
    "LEAD_STATUSES",
    "OUTCOMES",
    "PENDING_STATUSES",
    "Outcome",
    "answer_status",
    "for_code",
    "for_status",
    "metric_labels",
    "request_label",
]


@dataclass(frozen=True)
class Outcome:
    name: str  # a lead status, "duplicate", or a RelayError code
    metric: str  # the outcome label of relay_requests_total
    http_status: int | None  # the answer's status; None: the answer the lead's current status gives
    lead_status: str | None = None  # the status the lead has; None: no lead is stored
    is_error: bool = False  # keyed by a RelayError code


def _stored(name: str, http_status: int, metric: str | None = None) -> Outcome:
    return Outcome(name, metric or name, http_status, lead_status=name)


def _error(code: str, http_status: int, metric: str | None = None) -> Outcome:
    return Outcome(code, metric or code, http_status, is_error=True)


ERROR_LABEL = "error"  # a 500, or a code the table does not know: a defect either way

OUTCOMES: dict[str, Outcome] = {outcome.name: outcome for outcome in (
    # A lead was stored. Its status when the vendor is answered: the first answer, and
    # any repeat of it, reflects the status at that time (sync mode answers once settled).
    _stored("queued", 202),
    _stored("fetching", 202),  # stored, waiting for the lead's details from the vendor's API
    _stored("retry", 202, "queued"),
    _stored("delivered", 200, "queued"),
    _stored("dead", 200, "queued"),
    _stored("rejected", 422),  # the mapping refused it
    _stored("dropped", 200),  # a drop rule matched: accepted, never delivered
    Outcome("duplicate", "duplicate", None),  # the idempotency key was seen: the first lead's answer
    # Nothing stored: the request failed with a RelayError (or an HTTP error werkzeug raised).
    _error("bad_request", 400, "malformed"),
    _error("malformed_body", 400, "malformed"),
    _error("files_refused", 400, "malformed"),
    _error("unauthorized", 401),
    _error("forbidden", 403),
    _error("not_found", 404, "unknown_source"),
    _error("unknown_source", 404),
    _error("method_not_allowed", 405, "unsupported"),
    _error("request_timeout", 408, "malformed"),  # sent by the worker: the request never arrived whole
    _error("payload_too_large", 413, "too_large"),
    _error("unsupported_media_type", 415, "unsupported"),
    _error("lead_refused", 422, "rejected"),
    _error("rate_limited", 429),
    _error("internal_error", 500, ERROR_LABEL),
    _error("unavailable", 503),
    _error("store_unavailable", 503, "unavailable"),
    _error("source_misconfigured", 503, "unavailable"),
)}

LEAD_STATUSES: tuple[str, ...] = tuple(o.lead_status for o in OUTCOMES.values() if o.lead_status)
# Statuses still on their way to Trackdrive: answered 202, "accepted, not yet done".
PENDING_STATUSES: tuple[str, ...] = tuple(o.name for o in OUTCOMES.values() if o.lead_status and o.http_status == 202)


def for_status(status: str) -> Outcome | None:
    """The outcome of a request whose lead has ``status``; None for a status the table does not know."""
    outcome = OUTCOMES.get(status)
    return outcome if outcome is not None and outcome.lead_status else None


def for_code(code: str) -> Outcome | None:
    """The outcome of a request that failed with the RelayError ``code``; None if unknown."""
    outcome = OUTCOMES.get(code)
    return outcome if outcome is not None and outcome.is_error else None


def answer_status(lead_status: str) -> int:
    """The HTTP status of the answer for a lead with ``lead_status``."""
    outcome = for_status(lead_status)
    if outcome is None or outcome.http_status is None:
        raise KeyError(f"no answer is defined for lead status {lead_status!r}")
    return outcome.http_status


def request_label(*, status: str | None = None, code: str | None = None, duplicate: bool = False) -> str:
    """The metric label for a request: by its lead's status, or by its error code."""
    if duplicate:
        return OUTCOMES["duplicate"].metric
    outcome = for_status(status) if status is not None else for_code(code) if code is not None else None
    return outcome.metric if outcome is not None else ERROR_LABEL


def metric_labels() -> tuple[str, ...]:
    """Every label value relay_requests_total can have, in table order."""
    return tuple(dict.fromkeys([*(o.metric for o in OUTCOMES.values()), ERROR_LABEL]))


# How a request that carried several leads is answered as a whole: "accepted" as soon as one of
# its leads was taken (so a vendor that resends on any non-2xx never resends those), "rejected"
# when every lead was refused, "dropped" otherwise. (metric label, HTTP status)
BATCH_OUTCOMES: dict[str, tuple[str, int]] = {"accepted": ("queued", 202), "rejected": ("rejected", 422),
                                              "dropped": ("dropped", 200)}


def batch_status(lead_statuses: list[str]) -> str:
    """The overall status of a batch answer from its leads' statuses."""
    if any(status not in ("rejected", "dropped") for status in lead_statuses):
        return "accepted"
    return "rejected" if "rejected" in lead_statuses else "dropped"


def batch_label(status: str) -> str:
    return BATCH_OUTCOMES[status][0] if status in BATCH_OUTCOMES else ERROR_LABEL
