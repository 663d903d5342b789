"""A store outage (10 s; 20 s on SQLite) while leads are at Trackdrive: every delivery is recorded, none is sent twice.

The outage starts while the sandbox holds the calls, so each answer arrives while the store
cannot record it. SQLite: another connection holds the write lock. PostgreSQL: the relay
reaches the server through a TCP forwarder that is cut, so the shared server never stops.
"""
from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import pytest
import requests

from relay.store import open_store
from tests.support import postgres
from tests.support.stack import Stack, wait_until
from tests.support.tcpproxy import TcpProxy

LEADS = 24
# PostgreSQL fails at once; a locked SQLite file makes each write wait its busy timeout (5 s)
# first, so its outage is longer for the same number of failed settles.
OUTAGE_S = {"postgres": 10.0, "sqlite": 20.0}
HEADERS = {"Content-Type": "application/json", "X-Api-Key": "example-key"}


def post(stack: Stack, i: int) -> str:
    lead = {"lead_id": f"outage-{i}", "contact": {"phone": f"+1512203{i:04d}"}}
    answer = requests.post(f"{stack.url}/hooks/generic-json", json=lead, headers=HEADERS, timeout=30)
    assert answer.status_code == 202, answer.text
    return answer.json()["lead_id"]


def sqlite_outage(stack: Stack) -> Callable[[], None]:
    holder = sqlite3.connect(stack.workdir / "relay.db", timeout=30, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")

    def end() -> None:
        holder.execute("ROLLBACK")
        holder.close()
    return end


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, str], TcpProxy | None]]:
    if request.param == "sqlite":
        yield "sqlite", {}, None
        return
    postgres.require_postgres()
    schema = postgres.new_schema_name("outage")
    proxy = TcpProxy(("127.0.0.1", 5432)).start()
    url = postgres.SERVER_URL.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    yield "postgres", {"RELAY_DATABASE_URL": f"{url}?schema={schema}&connect_timeout=2"}, proxy
    proxy.cut()
    postgres.drop_schema(schema)


def test_a_store_outage_sends_nothing_twice(tmp_path: Path, backend: tuple[str, dict[str, str], TcpProxy | None]
                                            ) -> None:
    name, env, proxy = backend
    lease_s = OUTAGE_S[name] + 5  # outlives the outage: recording must wait for the store, not give up
    stack = Stack(tmp_path, env_overrides={"RELAY_LEASE_SECONDS": str(lease_s), "RELAY_DELIVERY_CONCURRENCY": "16",
                                           **env}).start()
    try:
        stack.set_behaviour(delay_ms=3000)  # calls are still at Trackdrive when the store goes
        with ThreadPoolExecutor(8) as pool:
            lead_ids = list(pool.map(lambda i: post(stack, i), range(LEADS)))
        if proxy is not None:
            proxy.cut()
            end_outage: Callable[[], None] = proxy.restore
        else:
            end_outage = sqlite_outage(stack)
        time.sleep(OUTAGE_S[name])
        end_outage()

        store = open_store(env.get("RELAY_DATABASE_URL", stack.database_url))
        try:
            def statuses() -> set[str]:
                return {store.get(lead_id).status for lead_id in lead_ids}
            wait_until(lambda: statuses() == {"delivered"}, timeout_s=90)
            assert statuses() == {"delivered"}, statuses()
            # Past the lease: a delivery that went unrecorded would have gone out again by now.
            time.sleep(lease_s + 3)
        finally:
            store.close()
        stats = stack.sandbox_stats()
        assert stats["distinct_leads_accepted"] == LEADS, stats
        assert stats["duplicates_accepted"] == 0 and stats["replayed"] == 0, (name, stats)
        assert "settled after the store came back" in stack.logs()
    finally:
        stack.stop()
