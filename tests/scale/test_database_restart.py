"""PostgreSQL stops and starts again under a stream of leads: 503 meanwhile, nothing lost."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import count
from urllib.parse import urlsplit

import pytest
import requests

from relay.store import open_store
from tests.scale.cluster import API_KEY, Cluster, accepted_lead_ids
from tests.support import postgres
from tests.support.stack import wait_until

STREAMS = 4
DOWN_PROBES = 5


@dataclass(frozen=True)
class Answer:
    started: float
    ended: float
    status: int  # 0: no HTTP answer at all
    lead_id: str | None
    code: str | None


def post_lead(session: requests.Session, url: str, index: int) -> Answer:
    lead = {"lead_id": f"R-{index:06d}", "phone": f"(713) 555-01{index % 100:02d}"}
    started = time.monotonic()
    try:
        response = session.post(f"{url}/hooks/generic-json", json=lead,
                                headers={"X-Api-Key": API_KEY}, timeout=30)
    except requests.RequestException:
        return Answer(started, time.monotonic(), 0, None, None)
    body = response.json()
    return Answer(started, time.monotonic(), response.status_code, body.get("lead_id"),
                  (body.get("error") or {}).get("code"))


def require_local_cluster() -> None:
    postgres.require_postgres()
    if postgres.cluster() is None or urlsplit(postgres.SERVER_URL).hostname not in ("127.0.0.1", "localhost"):
        pytest.skip("restarting PostgreSQL needs the local cluster (pg_ctlcluster)")


def test_requests_during_a_database_restart_get_503_and_nothing_acknowledged_is_lost(
        cluster: Cluster) -> None:
    require_local_cluster()
    cluster.start_sandbox()
    cluster.start_relay()
    url = cluster.relay_url(0)
    answers: list[Answer] = []
    numbers = count()
    streaming = threading.Event()
    streaming.set()

    def stream() -> None:
        session = requests.Session()
        while streaming.is_set():
            answers.append(post_lead(session, url, next(numbers)))

    def acked() -> int:
        return sum(1 for answer in answers if 200 <= answer.status < 300)

    with ThreadPoolExecutor(STREAMS) as pool:
        streams = [pool.submit(stream) for _ in range(STREAMS)]
        try:
            assert wait_until(lambda: acked() >= 100), cluster.logs()
            postgres.pg_ctl("stop")
            down_from = time.monotonic()
            session = requests.Session()
            probes = [post_lead(session, url, 1_000_000 + i) for i in range(DOWN_PROBES)]
            readiness = requests.get(f"{url}/readyz", timeout=30).status_code
            down_until = time.monotonic()
        finally:
            postgres.pg_ctl("start")
        acked_before_up = acked()
        assert wait_until(lambda: acked() >= acked_before_up + 100), (
            f"the stream did not resume after the database came back\n{cluster.logs()}")
        streaming.clear()
        for finished in streams:
            finished.result(timeout=60)

    assert [(p.status, p.code) for p in probes] == [(503, "store_unavailable")] * DOWN_PROBES, probes
    assert readiness == 503
    during = [a for a in answers if a.started >= down_from and a.ended <= down_until]
    assert during and all(a.status == 503 for a in during), during
    assert {a.status for a in answers} <= {202, 503}, {a.status for a in answers}

    acknowledged = {a.lead_id for a in answers if a.status == 202}
    store = open_store(cluster.database_url, migrate=False)
    try:
        assert all(store.get(lead_id) is not None for lead_id in acknowledged)
    finally:
        store.close()
    assert wait_until(lambda: acknowledged <= set(accepted_lead_ids(cluster.received())),
                      timeout_s=60, interval_s=0.5), cluster.logs()
    assert cluster.sandbox_stats()["duplicates_accepted"] == 0
    assert requests.get(f"{url}/readyz", timeout=30).status_code == 200
