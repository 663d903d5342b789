"""Delivery: speed to call and throughput, measured through real processes.

    python bench/delivery.py [--rate 100] [--seconds 20] [--slow-leads 3000]

Speed to call: leads are posted at a steady --rate while the sandbox answers at once; for each
lead, latency = the sandbox's receipt time - the relay's received_at (both on this machine's
clock). Targets: p50 <= 10 ms, p99 <= 50 ms at 100 leads/s.

Throughput: the sandbox takes 200 ms per call; --slow-leads leads are posted as fast as the relay
takes them and delivered leads/s is counted from the sandbox's record. Target: >= 150 leads/s.
"""
from __future__ import annotations

import argparse
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from relay.store import open_store

from harness import Stack, relay_stack, wait_until

HEADERS = {"Content-Type": "application/json", "X-Api-Key": "example-key"}


def lead(i: int, tag: str) -> dict:
    return {"lead_id": f"{tag}-{i}", "contact": {"first_name": "Ana", "phone": f"(512) 201-{i % 10000:04d}",
                                                  "email": f"ana{i}@example.com"}, "utm_source": "bench"}


def post(session: requests.Session, stack: Stack, i: int, tag: str) -> str:
    answer = session.post(f"{stack.url}/hooks/generic-json", json=lead(i, tag), headers=HEADERS, timeout=30)
    answer.raise_for_status()
    return answer.json()["lead_id"]


def accepted_times(stack: Stack) -> dict[str, float]:
    return {r["lead_id"]: r["time"] for r in stack.received() if r["answer"]["fate"] == "accepted"}


def all_accepted(stack: Stack, ids: list[str], timeout_s: float = 60) -> dict[str, float]:
    def complete() -> dict[str, float] | None:
        times = accepted_times(stack)
        return times if len(times) >= len(ids) else None
    times = wait_until(complete, timeout_s=timeout_s)
    if times is None:
        raise SystemExit(f"only {len(accepted_times(stack))} of {len(ids)} leads were delivered in time")
    return times


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def speed_to_call(workdir: Path, rate: float, seconds: float) -> dict[str, float]:
    stack = relay_stack(workdir).start()
    try:
        session, ids, interval = requests.Session(), [], 1.0 / rate
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            time.sleep(max(0.0, start + i * interval - time.monotonic()))
            ids.append(post(session, stack, i, "stc"))
        times = all_accepted(stack, ids)
        store = open_store(stack.database_url)
        try:
            latencies = [(times[i] - store.get(i).received_at) * 1000 for i in ids]
        finally:
            store.close()
        return {"leads": len(ids), "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99),
                "max_ms": max(latencies)}
    finally:
        stack.stop()


def throughput(workdir: Path, leads: int) -> dict[str, float]:
    stack = relay_stack(workdir).start()
    try:
        stack.set_behaviour(delay_ms=200)
        local = threading.local()

        def send(i: int) -> str:
            local.session = getattr(local, "session", None) or requests.Session()
            return post(local.session, stack, i, "tput")

        with ThreadPoolExecutor(16) as pool:
            ids = list(pool.map(send, range(leads)))
        times = all_accepted(stack, ids, timeout_s=300)
        delivered = sorted(times[i] for i in ids)
        span = delivered[-1] - delivered[0]
        return {"leads": len(ids), "seconds": span, "delivered_per_s": (len(ids) - 1) / span}
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--slow-leads", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "stc").mkdir()
        (Path(tmp) / "tput").mkdir()
        stc = speed_to_call(Path(tmp) / "stc", args.rate, args.seconds)
        tput = throughput(Path(tmp) / "tput", args.slow_leads)
    print("\n| measure | result | target |")
    print("|---|---:|---:|")
    print(f"| speed to call p50 at {args.rate:.0f} leads/s ({stc['leads']} leads) "
          f"| {stc['p50_ms']:.1f} ms | <= 10 ms |")
    print(f"| speed to call p99 | {stc['p99_ms']:.1f} ms | <= 50 ms |")
    print(f"| speed to call max | {stc['max_ms']:.1f} ms | |")
    print(f"| throughput, sandbox 200 ms per call ({tput['leads']} leads) "
          f"| {tput['delivered_per_s']:.0f} leads/s | >= 150 leads/s |")


if __name__ == "__main__":
    main()
