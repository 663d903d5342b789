"""The outbox storage interface.

Every backend (SQLite today, PostgreSQL next) implements :class:`Store` and must
pass the same contract suite in ``tests/store/test_contract.py``. Two rules shape
it:

* A lead is committed (raw request plus mapped call, one transaction) before the
  vendor is answered, and ``insert`` raises :class:`relay.errors.StoreUnavailable`
  rather than pretend.
* Delivery claims are atomic leases: a lead is held by one owner until it is
  settled or its lease expires, after which any worker may take it over.
"""
from __future__ import annotations

import abc
import builtins
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

# Lifecycle:  queued -> (claimed, leased) -> delivered | retry -> ... | dead
#             fetching -> (claimed) -> resolved to queued | rejected | dropped, or dead
#             rejected (mapping refused) and dropped (drop rule) are terminal until replayed.
STATUSES = ("fetching", "queued", "retry", "delivered", "dead", "rejected", "dropped")
# A lead in one of these was taken on: it holds its dedupe key, so a resend is a duplicate.
ACCEPTED_STATUSES = ("queued", "fetching")
# Waiting for the delivery worker (to fetch, to send, or to send again).
PENDING_STATUSES = ("fetching", "queued", "retry")


@dataclass(frozen=True)
class Received:
    """What the web layer hands to the store for one vendor request."""

    source: str
    received_at: float  # epoch seconds
    method: str
    content_type: str
    query: str
    headers: dict[str, str]  # the ones worth keeping, secrets removed
    body: bytes
    client_addr: str
    status: str  # fetching | queued | rejected | dropped
    call: dict[str, Any] | None = None  # TrackdriveCall.to_dict() when queued
    error: dict[str, Any] | None = None  # refusal or drop details
    mapping_version: str = ""
    dedupe_key: str | None = None
    dedupe_window_s: float = 0.0
    request_id: str = ""
    # A queued lead may be stored already leased to the process that received it, which
    # delivers it at once: that saves the separate claim write on the hot path.
    lease_owner: str | None = None
    lease_until: float | None = None
    # One vendor request may carry several leads: they share batch_id (empty: the store
    # uses the id of the batch's first lead) and are numbered 0..batch_size-1.
    batch_id: str = ""
    batch_index: int = 0
    batch_size: int = 1

    def initial_lease(self) -> tuple[str | None, float | None]:
        """(owner, until) a new row starts with: only a lead waiting for the worker can be held."""
        if self.status not in ACCEPTED_STATUSES or not self.lease_owner:
            return None, None
        return self.lease_owner, self.lease_until

    @property
    def accepted(self) -> bool:
        return self.status in ACCEPTED_STATUSES


@dataclass(frozen=True)
class Lead:
    id: str
    source: str
    status: str
    received_at: float
    method: str
    content_type: str
    query: str
    headers: dict[str, str]
    body: bytes
    client_addr: str
    call: dict[str, Any] | None
    error: dict[str, Any] | None
    mapping_version: str
    dedupe_key: str | None
    attempts: int  # settles since the lead was last (re)queued; attempts() keeps the whole history
    next_attempt_at: float | None
    lease_owner: str | None
    lease_until: float | None
    response_status: int | None
    response_body: str | None
    delivered_at: float | None
    updated_at: float
    request_id: str = ""
    batch_id: str = ""
    batch_index: int = 0
    batch_size: int = 1
    fetched: Any | None = None  # what the vendor's API returned for a fetched lead
    caller_id: str | None = None  # normalised, from the call; what a phone search matches
    email: str | None = None  # lower case, from the call; what an email search matches


@dataclass(frozen=True)
class Settlement:
    """How one delivery attempt ended, as the store records it."""

    result: str  # delivered | retry | dead
    at: float
    response_status: int | None = None
    response_body: str | None = None
    next_attempt_at: float | None = None  # required for retry
    reason: str = ""
    latency_s: float | None = None


@dataclass(frozen=True)
class Count:
    day: str  # YYYY-MM-DD (UTC) of received_at
    source: str
    status: str
    count: int


@dataclass(frozen=True)
class PendingStats:
    pending: int  # fetching + queued + retry
    oldest_received_at: float | None
    dead: int = 0


# --- the console's reads and its audit log ---

# Duplicates are counted per source and quarter hour: every time zone's day starts on one.
DUPLICATE_SLOT_S = 900


@dataclass(frozen=True)
class LeadQuery:
    """A filtered selection of leads, newest first; every field is optional."""

    source: str | None = None
    status: str | None = None
    since: float | None = None  # received_at >= since
    until: float | None = None  # received_at < until
    caller_id: str | None = None  # normalised (E.164)
    email: str | None = None  # lower case
    ids: tuple[str, ...] | None = None
    # Keyset: only leads strictly older than (received_at, id) of the previous page's last one.
    after: tuple[float, str] | None = None


@dataclass(frozen=True)
class SourceActivity:
    """One source's leads received since a time, by status, with its last lead and backlog."""

    source: str
    by_status: dict[str, int]
    duplicates: int
    last_received_at: float | None
    oldest_pending_at: float | None


@dataclass(frozen=True)
class AuditEntry:
    at: float
    actor: str  # who, as the console knows them
    action: str  # retry | replay | purge | reveal ...
    selection: str  # the filter or the lead ids, as the operator gave them
    lead_count: int
    detail: str = ""
    seq: int = 0  # given by the store


class Store(abc.ABC):
    """The outbox. Methods are thread-safe; every write is its own transaction."""

    @abc.abstractmethod
    def migrate(self) -> None: ...

    def insert(self, received: Received) -> tuple[Lead, bool]:
        """Commit one lead. Returns (lead, created); see :meth:`insert_batch`."""
        return self.insert_batch([received])[0]

    def insert_batch(self, received: Sequence[Received]) -> list[tuple[Lead, bool]]:
        """Commit every lead of one vendor request in one transaction: all or none.

        Returns (lead, created) per lead, in input order. Each lead gets a new id; an
        empty ``batch_id`` becomes the id of the batch's first lead. A lead whose
        ``dedupe_key`` is held by a live earlier lead is not written: (that earlier
        lead, False) stands in its place. Only an accepted lead (ACCEPTED_STATUSES)
        takes its key, so a refused request never blocks the vendor's corrected resend.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement insert_batch()")

    def dedupe_holder(self, source: str, key: str, now: float) -> str | None:
        """The id of the lead holding ``key`` of ``source`` at ``now``, or None."""
        raise NotImplementedError(f"{type(self).__name__} does not implement dedupe_holder()")

    @abc.abstractmethod
    def claim(self, lead_id: str, owner: str, lease_s: float, now: float) -> Lead | None:
        """Lease one lead if it is pending (PENDING_STATUSES), due, and not leased by another."""

    @abc.abstractmethod
    def claim_due(self, owner: str, limit: int, lease_s: float, now: float) -> list[Lead]:
        """Lease up to ``limit`` deliverable leads, oldest due first."""

    @abc.abstractmethod
    def settle(self, lead_id: str, owner: str, settlement: Settlement) -> bool:
        """Record an attempt and move the lead on; False if ``owner`` no longer holds the lease.

        A ``fetching`` lead settled "retry" stays ``fetching``: it still has to be fetched.
        """

    def settle_many(self, owner: str, settlements: Sequence[tuple[str, Settlement]]) -> builtins.list[bool]:
        """Several settles, in one transaction where the backend can: one commit for a batch.

        Each result is what :meth:`settle` would have said for that lead.
        """
        return [self.settle(lead_id, owner, settlement) for lead_id, settlement in settlements]

    def resolve(self, lead_id: str, owner: str, *, status: str, call: dict[str, Any] | None,
                error: dict[str, Any] | None, fetched: Any | None, mapping_version: str,
                now: float) -> bool:
        """Store what the worker fetched for a ``fetching`` lead it holds, and how it mapped.

        ``status`` queued (with a call) keeps the lease and makes the lead due now, so
        the same worker sends it at once; rejected or dropped clears the lease and
        releases the lead's dedupe key, so the vendor may send the lead again. False
        unless ``owner`` holds the lease on a ``fetching`` lead.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement resolve()")

    @abc.abstractmethod
    def release(self, lead_id: str, owner: str) -> bool:
        """Give a lease back untouched (shutdown), so the lead is due again at once."""

    def defer(self, lead_id: str, owner: str, next_attempt_at: float, now: float) -> bool:
        """Give a lease back without an attempt: status and attempts stay, due at ``next_attempt_at``.

        Used while delivery to Trackdrive is paused (the circuit breaker is open), so
        waiting does not spend the lead's retries. False if ``owner`` no longer holds it.
        Every backend must implement it; this default is only a placeholder.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement defer()")

    @abc.abstractmethod
    def get(self, lead_id: str) -> Lead | None: ...

    @abc.abstractmethod
    def attempts(self, lead_id: str) -> list[Settlement]: ...

    @abc.abstractmethod
    def counts(self, since: float | None = None, until: float | None = None) -> list[Count]: ...

    # Annotations below name the list method here, not the builtin: no list[...] after it.
    @abc.abstractmethod
    def list(self, status: str | None = None, source: str | None = None,
             limit: int = 100, batch_id: str | None = None) -> list[Lead]:
        """Newest first."""

    @abc.abstractmethod
    def requeue(self, lead_ids: Iterable[str] | None = None, source: str | None = None,
                status: str = "dead", now: float = 0.0) -> int:
        """Make dead letters (or ``status`` rows) due again; returns how many.

        ``lead_ids`` None means any id (an empty list matches none). Only leads that
        carry a call and hold no live lease move; their ``attempts`` restarts at 0 so
        the retry schedule starts over.
        """

    @abc.abstractmethod
    def remap(self, lead_id: str, status: str, call: dict[str, Any] | None,
              error: dict[str, Any] | None, mapping_version: str, now: float,
              dedupe_window_s: float = 0.0) -> bool:
        """Replace a stored request's mapping result (replay); queued or fetching makes it due now.

        ``status`` is queued (with a call), fetching, rejected or dropped. An accepted
        lead takes its dedupe key again (for ``dedupe_window_s`` from ``now``, when
        positive); a refused or dropped one gives up any key it holds. False when the
        lead is unknown or a worker holds a live lease on it.
        """

    @abc.abstractmethod
    def purge(self, older_than: float, statuses: tuple[str, ...] = ("delivered",)) -> int: ...

    @abc.abstractmethod
    def pending_stats(self, now: float) -> PendingStats: ...

    # --- retention and erasure (relay.store.retention) ---

    def redact(self, older_than: Mapping[str, float], now: float) -> int:
        """Blank the personal data of leads of each status received before its cutoff; how many."""
        raise NotImplementedError(f"{type(self).__name__} does not implement redact()")

    def redacted_at(self, lead_id: str) -> float | None:
        raise NotImplementedError(f"{type(self).__name__} does not implement redacted_at()")

    def take_turn(self, task: str, owner: str, interval_s: float, now: float) -> bool:
        """True for exactly one caller per ``interval_s`` across every process sharing the store."""
        raise NotImplementedError(f"{type(self).__name__} does not implement take_turn()")

    def forget(self, *, phone: str | None = None, email: str | None = None) -> Any:
        """Delete every stored trace of one phone or email; a ``relay.store.retention.Forgotten``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forget()")

    @abc.abstractmethod
    def check_writable(self) -> None:
        """Raise StoreUnavailable unless a write would succeed now."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # --- the console (each backend must implement these; the defaults only name them) ---

    def search(self, query: LeadQuery, limit: int = 50) -> builtins.list[Lead]:
        """Leads matching ``query``, newest first (received_at, then id), ``limit`` at most.

        Keyset paging: pass the last lead's (received_at, id) as ``query.after`` for the next page.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement search()")

    def activity(self, since: float, sources: Sequence[str]) -> builtins.list[SourceActivity]:
        """Per source (those named, and any other with leads since ``since``): the console's overview."""
        raise NotImplementedError(f"{type(self).__name__} does not implement activity()")

    def daily_counts(self, zone: str, since: float | None = None,
                     until: float | None = None) -> builtins.list[Count]:
        """Leads per day in the IANA time ``zone``, source and status, plus status ``duplicate``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement daily_counts()")

    def delete(self, lead_ids: Sequence[str]) -> int:
        """Delete these leads with their attempts and dedupe keys; returns how many were there."""
        raise NotImplementedError(f"{type(self).__name__} does not implement delete()")

    def record_audit(self, entry: AuditEntry) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement record_audit()")

    def audit_log(self, limit: int = 100) -> builtins.list[AuditEntry]:
        """Newest first."""
        raise NotImplementedError(f"{type(self).__name__} does not implement audit_log()")
