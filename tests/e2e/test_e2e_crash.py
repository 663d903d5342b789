"""2,000 leads against a failing Trackdrive, with the relay killed -9 part-way and restarted,
then the outbox unreachable for 10 s while calls are at Trackdrive.

Counting afterwards: every lead acknowledged with a 2xx reaches the sandbox, none that the
sandbox accepted is accepted twice, none is lost. A call the relay made but never recorded is
one it may make again (a duplicate at Trackdrive but for the Idempotency-Key): comparing the
sandbox's record of calls per lead with the relay's attempts counts them. They number no
more than the leads in flight at the kill, and the store outage adds none.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from relay.store import open_store
from tests.support.stack import Stack, wait_until

LEADS = 2000
KILL_AFTER = 700  # acknowledgements before the kill
CLIENTS = 16
CONCURRENCY = 8  # delivery threads per worker; bounds what can be in flight at the kill
WORKERS = 2
LEASE_S = 15  # outlives the store outage: a delivery made meanwhile is recorded when the store is back
OUTAGE_S = 10
OUTAGE_LEADS = 100  # posted just before the outage, so their calls are out when the store goes
HEADERS = {"Content-Type": "application/json", "X-Api-Key": "example-key"}


def lead(i: int) -> dict:
    return {"lead_id": f"crash-{i}", "contact": {"phone": f"+1512201{i:04d}", "first_name": f"Lead{i}"}}


class Poster:
    """Posts like a vendor: retries its own lead on a connection error or a 5xx (same lead_id)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.acked: dict[str, str] = {}  # vendor lead_id -> relay lead id
        self.lock = threading.Lock()
        self.enough_acked = threading.Event()

    def post(self, i: int) -> None:
        for _ in range(600):
            try:
                answer = requests.post(f"{self.stack.url}/hooks/generic-json", json=lead(i), headers=HEADERS,
                                       timeout=10)
            except requests.RequestException:
                threading.Event().wait(0.05)
                continue
            if answer.status_code >= 500:
                threading.Event().wait(0.05)
                continue
            assert answer.status_code in (200, 202), answer.text
            with self.lock:
                self.acked[f"crash-{i}"] = answer.json()["lead_id"]
                if len(self.acked) >= KILL_AFTER:
                    self.enough_acked.set()
            return
        raise AssertionError(f"lead {i} was never acknowledged")


def leased_now(database: Path) -> int:
    """Leads a worker held (claimed or being sent): read after the kill, those in flight at it."""
    with sqlite3.connect(database) as conn:
        return conn.execute("SELECT count(*) FROM leads WHERE lease_owner IS NOT NULL"
                            " AND status IN ('queued', 'retry', 'fetching')").fetchone()[0]


def unrecorded_calls(stack: Stack, database: Path) -> dict[str, int]:
    """By relay lead id: calls Trackdrive received beyond the attempts the relay recorded."""
    calls = Counter(record["lead_id"] for record in stack.received() if record.get("lead_id"))
    with sqlite3.connect(database) as conn:
        recorded = dict(conn.execute("SELECT id, attempts FROM leads").fetchall())
    return {lead_id: calls[lead_id] - recorded.get(lead_id, 0) for lead_id in calls
            if calls[lead_id] > recorded.get(lead_id, 0)}


def store_outage(database: Path, seconds: float) -> None:
    """Hold SQLite's write lock: every write of the relay fails (after its busy timeout) meanwhile."""
    holder = sqlite3.connect(database, timeout=30, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        holder.execute("ROLLBACK")
    finally:
        holder.close()


def test_crash_loses_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    stack = Stack(tmp_path, workers=WORKERS, sandbox_args=("--seed", "7"), env_overrides={
        "RELAY_RETRY_DELAYS": ",".join(["0.2", "0.5"] + ["1"] * 20), "RELAY_RETRY_JITTER": "0.1",
        "RELAY_READ_TIMEOUT": "1", "RELAY_LEASE_SECONDS": str(LEASE_S),
        "RELAY_DELIVERY_CONCURRENCY": str(CONCURRENCY),
    }).start()
    try:
        stack.set_behaviour(fail_rate=0.2, timeout_rate=0.1, timeout_s=2)
        poster = Poster(stack)
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(poster.post, i) for i in range(LEADS)]
            assert poster.enough_acked.wait(120), "the relay did not acknowledge leads"
            stack.relay.kill()
            in_flight_at_kill = leased_now(tmp_path / "relay.db")
            stack.start_relay()
            for future in futures:
                future.result()

        # Every lease of the killed workers has run out and its lead been taken over.
        time.sleep(LEASE_S + 2)
        before_outage = set(poster.acked.values())
        stack.set_behaviour(delay_ms=400)  # calls stay out a while, under the relay's read timeout
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(poster.post, range(LEADS, LEADS + OUTAGE_LEADS)))
        store_outage(tmp_path / "relay.db", OUTAGE_S)

        acked = set(poster.acked.values())
        assert len(poster.acked) == LEADS + OUTAGE_LEADS
        stats = wait_until(lambda: (s := stack.sandbox_stats())["distinct_leads_accepted"] >= len(acked) and s,
                           timeout_s=180)
        assert stats, f"not every acknowledged lead reached the sandbox: {stack.sandbox_stats()}"
        accepted = {r["lead_id"] for r in stack.received() if r["answer"]["fate"] == "accepted"}
        assert acked <= accepted, f"{len(acked - accepted)} acknowledged leads never reached Trackdrive"
        assert stats["duplicates_accepted"] == 0
        assert in_flight_at_kill <= WORKERS * CONCURRENCY

        store = open_store(stack.database_url)
        try:
            def statuses() -> set[str]:
                return {store.get(lead_id).status for lead_id in acked}
            wait_until(lambda: statuses() == {"delivered"}, timeout_s=30)
            assert statuses() == {"delivered"}
        finally:
            store.close()
        # Only a lead in flight at the kill can have been sent without its attempt recorded;
        # the store outage, with every call it caught recorded once the store was back, adds none.
        unrecorded = unrecorded_calls(stack, tmp_path / "relay.db")
        assert sum(unrecorded.values()) <= in_flight_at_kill, (in_flight_at_kill, unrecorded)
        assert set(unrecorded) <= before_outage, unrecorded
        assert "settled after the store came back" in stack.relay.log()  # the outage did catch calls
        print(f"crash run: {len(acked)} acknowledged, {in_flight_at_kill} in flight at the kill, sandbox {stats}")
    finally:
        stack.stop()
