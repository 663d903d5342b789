"""2,000 leads against a failing Trackdrive, with the relay killed -9 part-way and restarted.

Counting afterwards: every lead acknowledged with a 2xx reaches the sandbox, none that the
sandbox accepted is accepted twice, and none is lost.
"""
from __future__ import annotations

import threading
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


def test_crash_loses_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    stack = Stack(tmp_path, workers=WORKERS, sandbox_args=("--seed", "7"), env_overrides={
        "RELAY_RETRY_DELAYS": ",".join(["0.2", "0.5"] + ["1"] * 20), "RELAY_RETRY_JITTER": "0.1",
        "RELAY_READ_TIMEOUT": "1", "RELAY_LEASE_SECONDS": "3", "RELAY_DELIVERY_CONCURRENCY": str(CONCURRENCY),
    }).start()
    try:
        stack.set_behaviour(fail_rate=0.2, timeout_rate=0.1, timeout_s=2)
        poster = Poster(stack)
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(poster.post, i) for i in range(LEADS)]
            assert poster.enough_acked.wait(120), "the relay did not acknowledge leads"
            stack.relay.kill()
            stack.start_relay()
            for future in futures:
                future.result()

        acked = set(poster.acked.values())
        assert len(poster.acked) == LEADS
        stats = wait_until(lambda: (s := stack.sandbox_stats())["distinct_leads_accepted"] >= len(acked) and s,
                           timeout_s=180)
        assert stats, f"not every acknowledged lead reached the sandbox: {stack.sandbox_stats()}"
        accepted = {r["lead_id"] for r in stack.received() if r["answer"]["fate"] == "accepted"}
        assert acked <= accepted, f"{len(acked - accepted)} acknowledged leads never reached Trackdrive"
        assert stats["duplicates_accepted"] == 0
        # A resend can only come from a lead in flight at the kill; the bound says no more happened.
        assert stats["replayed"] <= WORKERS * CONCURRENCY, stats

        store = open_store(stack.database_url)
        try:
            def statuses() -> set[str]:
                return {store.get(lead_id).status for lead_id in acked}
            wait_until(lambda: statuses() == {"delivered"}, timeout_s=30)
            assert statuses() == {"delivered"}
        finally:
            store.close()
        print(f"crash run: {len(acked)} acknowledged, sandbox {stats}")
    finally:
        stack.stop()
