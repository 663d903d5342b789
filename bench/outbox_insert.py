"""The outbox insert alone: CPU and wall time per lead through Store.insert_batch on SQLite.

    python bench/outbox_insert.py [--leads 5000] [--rounds 3] [--threads 1 8]

One lead per call, as the hook stores a single-lead request (an idempotency key, a mapped
call), each in a fresh outbox; for each durability setting and thread count, the median of
the rounds. CPU is the whole process's (every thread, user + system): what a worker spends
so that a lead is committed. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relay.store import open_store
from relay.store.base import Received

CALL = {"action": "create_lead", "method": "POST", "path": "/api/v1/leads", "query": {},
        "body": {"caller_id": "+15125550100", "email": "ana@example.com", "data": {"first_name": "Ana"}}}


def lead(key: str) -> Received:
    return Received(source="generic-json", received_at=time.time(), method="POST",
                    content_type="application/json", query="", headers={},
                    body=b'{"phone": "5125550100", "email": "ana@example.com"}', client_addr="203.0.113.7",
                    status="queued", call=CALL, dedupe_key=key, dedupe_window_s=3600)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def one_round(synchronous: str, threads: int, leads: int) -> tuple[float, float]:
    """(wall µs, CPU µs) per lead."""
    with tempfile.TemporaryDirectory() as directory:
        store = open_store(f"sqlite:///{directory}/relay.db", synchronous=synchronous)
        for n in range(200):
            store.insert_batch([lead(f"warm-{n}")])
        per_thread = leads // threads

        def insert(thread: int) -> None:
            for n in range(per_thread):
                store.insert_batch([lead(f"{thread}-{n}")])

        workers = [threading.Thread(target=insert, args=(t,)) for t in range(threads)]
        wall, cpu = time.perf_counter(), cpu_s()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        wall, cpu = time.perf_counter() - wall, cpu_s() - cpu
        store.close()
        done = per_thread * threads
        return wall / done * 1e6, cpu / done * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    print("| synchronous | threads | wall µs per lead | CPU µs per lead |")
    print("|---|---:|---:|---:|")
    for synchronous in ("FULL", "NORMAL"):
        for threads in args.threads:
            rounds = [one_round(synchronous, threads, args.leads) for _ in range(args.rounds)]
            print(f"| {synchronous} | {threads} | {statistics.median(r[0] for r in rounds):,.0f} "
                  f"| {statistics.median(r[1] for r in rounds):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
