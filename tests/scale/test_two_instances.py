"""Two relay instances behind nginx share one PostgreSQL outbox; one is killed part-way."""
from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from relay.store import open_store
from relay.store.base import Store
from tests.scale.cluster import API_KEY, Cluster, accepted_lead_ids
from tests.scale.conftest import nginx_binary
from tests.support.stack import wait_until

LEADS = 2000
CLIENTS = 16
KILL_AFTER = 600  # acknowledged leads before instance 0 is killed
CLIENT_TRIES = 40  # a vendor re-sends until it gets a 2xx


@dataclass
class Ack:
    index: int
    lead_id: str | None
    statuses: list[int]


class Vendor:
    """Posts JSON leads like a vendor that retries on anything but a 2xx."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()

    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def post(self, index: int) -> Ack:
        lead = {"lead_id": f"L-{index:05d}", "phone": f"(713) 555-01{index % 100:02d}",
                "first_name": "pat", "state": "Texas"}
        statuses: list[int] = []
        for _ in range(CLIENT_TRIES):
            try:
                response = self.session().post(f"{self.url}/hooks/generic-json", json=lead,
                                               headers={"X-Api-Key": API_KEY}, timeout=30)
            except requests.RequestException:
                statuses.append(0)
                self._local.session = requests.Session()  # the pooled connection died
                time.sleep(0.05)
                continue
            statuses.append(response.status_code)
            if 200 <= response.status_code < 300:
                return Ack(index, response.json()["lead_id"], statuses)
            time.sleep(0.05)
        return Ack(index, None, statuses)


def test_leads_survive_one_instance_being_killed(cluster: Cluster) -> None:
    binary = nginx_binary()
    # A slow Trackdrive keeps deliveries in flight, so the killed instance dies holding leases.
    cluster.start_sandbox("--delay-ms", "40")
    cluster.start_relay()
    cluster.start_relay()
    cluster.start_proxy(binary)
    victim_workers = cluster.worker_pids(0)
    assert victim_workers, "instance 0 has no workers"

    vendor = Vendor(cluster.proxy_url)
    acked = Counter[str]()
    killed = threading.Event()
    orphaned: list[str] = []
    store = open_store(cluster.database_url, migrate=False)

    def kill_victim() -> None:
        cluster.relays[0].signal(signal.SIGKILL)
        cluster.relays[0].popen.wait(timeout=10)  # type: ignore[union-attr]
        orphaned.extend(_leased_by(store, victim_workers))
        killed.set()

    def post(index: int) -> Ack:
        ack = vendor.post(index)
        if ack.lead_id:
            acked[ack.lead_id] += 1
            if sum(acked.values()) == KILL_AFTER:
                threading.Thread(target=kill_victim).start()
        return ack

    try:
        with ThreadPoolExecutor(CLIENTS) as clients:
            acks = list(clients.map(post, range(LEADS)))
        assert killed.wait(30), "instance 0 was never killed"

        acknowledged = {ack.lead_id for ack in acks if ack.lead_id}
        assert len(acknowledged) == LEADS, (
            f"{LEADS - len(acknowledged)} leads never got a 2xx: "
            f"{[a.statuses for a in acks if not a.lead_id][:5]}")
        # Every answer was a 2xx, a 502/504 from nginx (instance died mid-request) or no answer.
        statuses = Counter(status for ack in acks for status in ack.statuses)
        assert set(statuses) <= {0, 200, 202, 502, 504}, statuses

        def all_delivered() -> bool:
            return acknowledged <= set(accepted_lead_ids(cluster.received()))

        assert wait_until(all_delivered, timeout_s=90, interval_s=0.5), (
            f"missing at the sandbox: {len(acknowledged - set(accepted_lead_ids(cluster.received())))}"
            f"\n{cluster.logs()}")
        accepted = Counter(accepted_lead_ids(cluster.received()))
        assert [lead_id for lead_id, n in accepted.items() if n > 1] == []
        assert set(accepted) == acknowledged  # nothing unacknowledged was sent either
        assert cluster.sandbox_stats()["duplicates_accepted"] == 0

        # The survivor took over what the dead instance held when it died.
        assert orphaned, "the killed instance held no leases: the takeover was not exercised"
        for lead_id in orphaned:
            lead = store.get(lead_id)
            assert lead is not None and lead.status == "delivered", lead
            assert lead.lease_owner is None
        assert store.pending_stats(time.time()).pending == 0
    finally:
        store.close()


def _leased_by(store: Store, workers: set[int]) -> list[str]:
    """Leads still waiting whose lease an owner in ``workers`` holds (owner = host:pid:nonce)."""
    leased = []
    for status in ("queued", "retry"):
        for lead in store.list(status=status, limit=10_000):
            if lead.lease_owner and int(lead.lease_owner.split(":")[1]) in workers:
                leased.append(lead.id)
    return leased
