"""An in-memory outbox with just what the dispatcher uses, plus injectable store errors."""
from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from relay.errors import StoreUnavailable
from relay.mapping.model import TrackdriveCall
from relay.sandbox import sandbox_state
from relay.sandbox.server import RunningSandbox
from relay.store.base import PENDING_STATUSES, Lead, Settlement, Store

TOKEN_ENV = "TD_TOKEN_TEST"
TOKEN = "tok_delivery_secret_123"


def set_behaviour(running: RunningSandbox, **changes: object) -> None:
    state = sandbox_state(running.app)
    state.behaviour = state.behaviour.updated(changes)


def received(running: RunningSandbox) -> list[dict]:
    return sandbox_state(running.app).recorder.since(0)


def create_call(caller_id: str = "+15551234567", **body: object) -> TrackdriveCall:
    return TrackdriveCall(action="create_lead", method="POST", path="/api/v1/leads",
                          query={"lead_token": "${%s}" % TOKEN_ENV},
                          body={"caller_id": caller_id, "data": {"first_name": "Ann"}, **body},
                          secrets={"lead_token": TOKEN_ENV})


def make_lead(lead_id: str, call: dict[str, Any] | None, *, attempts: int = 0,
              status: str = "queued", source: str = "vendor") -> Lead:
    return Lead(id=lead_id, source=source, status=status, received_at=0.0, method="POST",
                content_type="application/json", query="", headers={}, body=b"{}",
                client_addr="127.0.0.1", call=call, error=None, mapping_version="v1",
                dedupe_key=None, attempts=attempts, next_attempt_at=None, lease_owner=None,
                lease_until=None, response_status=None, response_body=None, delivered_at=None,
                updated_at=0.0)


class FakeStore(Store):
    def __init__(self, *leads: Lead) -> None:
        self._lock = threading.Lock()
        self.rows: dict[str, Lead] = {lead.id: lead for lead in leads}
        self.settlements: dict[str, list[Settlement]] = {}
        self.released: list[str] = []
        self.claim_due_errors = 0  # raise StoreUnavailable this many times
        self.settle_errors = 0

    def add(self, lead: Lead) -> None:
        with self._lock:
            self.rows[lead.id] = lead

    def _claimable(self, lead: Lead, now: float) -> bool:
        return (lead.status in PENDING_STATUSES
                and (lead.next_attempt_at is None or lead.next_attempt_at <= now)
                and (lead.lease_until is None or lead.lease_until <= now))

    def _lease(self, lead: Lead, owner: str, lease_s: float, now: float) -> Lead:
        leased = replace(lead, lease_owner=owner, lease_until=now + lease_s)
        self.rows[lead.id] = leased
        return leased

    def claim(self, lead_id: str, owner: str, lease_s: float, now: float) -> Lead | None:
        with self._lock:
            lead = self.rows.get(lead_id)
            if lead is None or not self._claimable(lead, now):
                return None
            return self._lease(lead, owner, lease_s, now)

    def claim_due(self, owner: str, limit: int, lease_s: float, now: float) -> list[Lead]:
        with self._lock:
            if self.claim_due_errors:
                self.claim_due_errors -= 1
                raise StoreUnavailable("database is locked")
            due = [lead for lead in self.rows.values() if self._claimable(lead, now)][:limit]
            return [self._lease(lead, owner, lease_s, now) for lead in due]

    def settle(self, lead_id: str, owner: str, settlement: Settlement) -> bool:
        with self._lock:
            if self.settle_errors:
                self.settle_errors -= 1
                raise StoreUnavailable("disk I/O error")
            lead = self.rows.get(lead_id)
            if lead is None or lead.lease_owner != owner:
                return False
            self.settlements.setdefault(lead_id, []).append(settlement)
            self.rows[lead_id] = replace(
                lead, status=settlement.result, attempts=lead.attempts + 1,
                next_attempt_at=settlement.next_attempt_at, lease_owner=None, lease_until=None,
                response_status=settlement.response_status, response_body=settlement.response_body)
            return True

    def release(self, lead_id: str, owner: str) -> bool:
        with self._lock:
            lead = self.rows.get(lead_id)
            if lead is None or lead.lease_owner != owner:
                return False
            self.released.append(lead_id)
            self.rows[lead_id] = replace(lead, lease_owner=None, lease_until=None)
            return True

    def get(self, lead_id: str) -> Lead | None:
        with self._lock:
            return self.rows.get(lead_id)

    # Not used by the dispatcher.
    def migrate(self) -> None: ...
    def insert(self, received): raise NotImplementedError
    def list(self, status=None, source=None, limit=100): raise NotImplementedError
    def attempts(self, lead_id): return list(self.settlements.get(lead_id, []))
    def counts(self, since=None, until=None): raise NotImplementedError
    def requeue(self, lead_ids=None, source=None, status="dead", now=0.0): raise NotImplementedError
    def remap(self, lead_id, status, call, error, mapping_version, now): raise NotImplementedError
    def purge(self, older_than, statuses=("delivered",)): raise NotImplementedError
    def pending_stats(self, now): raise NotImplementedError
    def check_writable(self) -> None: ...
    def close(self) -> None: ...


class StubClient:
    """Answers every send with ``outcome``; optionally holds each send until ``gate`` opens."""

    def __init__(self, outcome, gate: threading.Event | None = None) -> None:
        self.outcome = outcome
        self.gate = gate
        self.sent: list[str] = []
        self.started = threading.Event()
        self._lock = threading.Lock()

    def send(self, call: TrackdriveCall, *, lead_id: str, timeout_s: float | None = None):
        with self._lock:
            self.sent.append(lead_id)
        self.started.set()
        if self.gate is not None:
            self.gate.wait(30)
        return self.outcome


class CountingLimiter:
    def __init__(self) -> None:
        self.acquired = 0
        self._lock = threading.Lock()

    def acquire(self, cancel: threading.Event | None = None) -> bool:
        with self._lock:
            self.acquired += 1
        return True
