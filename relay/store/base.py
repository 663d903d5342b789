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
from dataclasses import dataclass
from typing import Any, Iterable

# Lifecycle:  queued -> (claimed, leased) -> delivered | retry -> ... | dead
#             rejected (mapping refused) and dropped (drop rule) are terminal until replayed.
STATUSES = ("queued", "retry", "delivered", "dead", "rejected", "dropped")


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
    status: str  # queued | rejected | dropped
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

    def initial_lease(self) -> tuple[str | None, float | None]:
        """(owner, until) a new row starts with: only a lead waiting for delivery can be held."""
        if self.status != "queued" or not self.lease_owner:
            return None, None
        return self.lease_owner, self.lease_until


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
    pending: int  # queued + retry
    oldest_received_at: float | None
    dead: int = 0


class Store(abc.ABC):
    """The outbox. Methods are thread-safe; every write is its own transaction."""

    @abc.abstractmethod
    def migrate(self) -> None: ...

    @abc.abstractmethod
    def insert(self, received: Received) -> tuple[Lead, bool]:
        """Commit one request. Returns (lead, created).

        With a ``dedupe_key`` whose earlier lead is still inside its window, nothing
        is written and (that earlier lead, False) is returned.
        """

    @abc.abstractmethod
    def claim(self, lead_id: str, owner: str, lease_s: float, now: float) -> Lead | None:
        """Lease one lead if it is deliverable now (queued/retry and due, or its lease expired)."""

    @abc.abstractmethod
    def claim_due(self, owner: str, limit: int, lease_s: float, now: float) -> list[Lead]:
        """Lease up to ``limit`` deliverable leads, oldest due first."""

    @abc.abstractmethod
    def settle(self, lead_id: str, owner: str, settlement: Settlement) -> bool:
        """Record an attempt and move the lead on; False if ``owner`` no longer holds the lease."""

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
    def list(self, status: str | None = None, source: str | None = None,
             limit: int = 100) -> list[Lead]:
        """Newest first."""

    @abc.abstractmethod
    def attempts(self, lead_id: str) -> list[Settlement]: ...

    @abc.abstractmethod
    def counts(self, since: float | None = None, until: float | None = None) -> list[Count]: ...

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
              error: dict[str, Any] | None, mapping_version: str, now: float) -> bool:
        """Replace a stored request's mapping result (replay); status queued makes it due now.

        ``status`` is queued (with a call), rejected or dropped. False when the lead is
        unknown or a worker holds a live lease on it.
        """

    @abc.abstractmethod
    def purge(self, older_than: float, statuses: tuple[str, ...] = ("delivered",)) -> int: ...

    @abc.abstractmethod
    def pending_stats(self, now: float) -> PendingStats: ...

    @abc.abstractmethod
    def check_writable(self) -> None:
        """Raise StoreUnavailable unless a write would succeed now."""

    @abc.abstractmethod
    def close(self) -> None: ...
