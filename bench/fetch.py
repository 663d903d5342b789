"""The fetch stage: what it costs the vendor's answer, and how fast a fetched lead reaches Trackdrive.

    python bench/fetch.py [--pairs 300] [--leads 100] [--graph-delay-ms 100]

Ack: a signed Meta notification (facebook-leadgen, stored as fetching) and a signed Meta lead
object (facebook-lead, mapped at once) are posted one after the other, interleaved, --pairs
times, by one client; the ack is the client-side time from send to answer. Target: the fetch
source's p50 within 10% of the non-fetch source's.

Speed to call: the sandbox plays a Graph API that answers after --graph-delay-ms; --leads
notifications are posted at 5/s (under the source's fetch rate limit, 10/s); for each lead,
latency = the sandbox's receipt of the Trackdrive call - the relay's received_at (one clock).
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import requests

from relay.store import open_store

from harness import SHIPPED_SECRETS, Stack, relay_stack, wait_until

SECRET = SHIPPED_SECRETS["FACEBOOK_APP_SECRET"]


def signed(body: bytes) -> dict[str, str]:
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"}


def notification(leadgen_id: str) -> bytes:
    change = {"field": "leadgen", "value": {"leadgen_id": leadgen_id, "page_id": "104857392011234"}}
    return json.dumps({"object": "page", "entry": [{"id": "104857392011234", "changes": [change]}]}).encode()


def lead_object(leadgen_id: str, i: int) -> bytes:
    return json.dumps({"id": leadgen_id, "created_time": "2025-11-27T10:46:03+0000", "field_data": [
        {"name": "phone_number", "values": [f"+1512201{i % 10000:04d}"]},
        {"name": "email", "values": [f"b{i}@example.com"]}]}).encode()


def timed_post(session: requests.Session, url: str, body: bytes) -> tuple[float, dict]:
    started = time.perf_counter()
    answer = session.post(url, data=body, headers=signed(body), timeout=30)
    elapsed = time.perf_counter() - started
    answer.raise_for_status()
    return elapsed, answer.json()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ack_side_by_side(stack: Stack, pairs: int) -> list[str]:
    session = requests.Session()
    fetch_ms, plain_ms, posted = [], [], []
    for i in range(pairs + 20):
        leadgen_id = str(10**15 + uuid.uuid4().int % 10**14)
        first, answer = timed_post(session, f"{stack.url}/hooks/facebook-leadgen", notification(leadgen_id))
        posted.append(answer["leads"][0]["lead_id"])
        second, _ = timed_post(session, f"{stack.url}/hooks/facebook-lead", lead_object(leadgen_id, i))
        if i >= 20:  # warm-up: connections, imports, first SQLite pages
            fetch_ms.append(first * 1000)
            plain_ms.append(second * 1000)
    f50, p50 = statistics.median(fetch_ms), statistics.median(plain_ms)
    print(f"ack p50: fetch source {f50:.2f} ms, non-fetch source {p50:.2f} ms "
          f"({(f50 / p50 - 1) * 100:+.1f}%); p99 {percentile(fetch_ms, 0.99):.2f} ms vs "
          f"{percentile(plain_ms, 0.99):.2f} ms over {pairs} interleaved pairs")
    return posted


def delivered(stack: Stack, ids: list[str], timeout_s: float = 300) -> dict[str, float]:
    def received() -> dict[str, float] | None:
        times = {r["lead_id"]: r["time"] for r in stack.received() if r["answer"]["fate"] == "accepted"}
        return times if all(lead_id in times for lead_id in ids) else None
    times = wait_until(received, timeout_s=timeout_s, interval_s=0.5)
    assert times, "not every lead reached the sandbox"
    return times  # type: ignore[no-any-return]


def speed_to_call(stack: Stack, leads: int, delay_ms: int, backlog: list[str]) -> None:
    delivered(stack, backlog)  # the ack run's leads, fetched at the source's rate limit, go first
    requests.delete(f"{stack.sandbox_url}/_sandbox/received", timeout=10)
    requests.post(f"{stack.sandbox_url}/_sandbox/vendors", json={"delay_ms": delay_ms}, timeout=10)
    session = requests.Session()
    ids = []
    for _ in range(leads):
        _, answer = timed_post(session, f"{stack.url}/hooks/facebook-leadgen",
                               notification(str(10**15 + uuid.uuid4().int % 10**14)))
        ids.append(answer["leads"][0]["lead_id"])
        time.sleep(0.2)  # under the source's fetch rate limit (10/s)
    times = delivered(stack, ids)
    store = open_store(stack.database_url)
    try:
        latency = [(times[i] - store.get(i).received_at) * 1000 for i in ids]  # type: ignore[union-attr]
    finally:
        store.close()
    print(f"speed to call with a {delay_ms} ms Graph API: p50 {statistics.median(latency):.1f} ms, "
          f"p99 {percentile(latency, 0.99):.1f} ms over {leads} leads")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--leads", type=int, default=100)
    parser.add_argument("--graph-delay-ms", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = relay_stack(Path(tmp)).start()
        try:
            backlog = ack_side_by_side(stack, args.pairs)
            speed_to_call(stack, args.leads, args.graph_delay_ms, backlog)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
