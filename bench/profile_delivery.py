"""The cost of delivering one lead, in-process: a dispatcher draining a queued outbox.

    python bench/profile_delivery.py [--leads 4000] [--concurrency 16] [--rounds 3]

Stores --leads queued leads (a generic create_lead call) in a fresh SQLite outbox
(synchronous=FULL), then starts a Dispatcher whose client calls the light Trackdrive
stand-in (bench/standin.js, answering at once; installed with Node-RED by bench/peers.py
on first use) and waits until every lead is delivered. Prints delivered leads/s and CPU
per delivered lead (every thread of this process: claims, calls, settles, the JSON attempt
line written to /dev/null, metrics), median of the rounds. No gunicorn and no intake: what
is left when a worker only delivers.
"""
from __future__ import annotations

import argparse
import logging.config
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from peers import install_node_red, start_standin

from relay.delivery.client import TrackdriveClient
from relay.delivery.dispatcher import Dispatcher
from relay.delivery.retry import RetryPolicy
from relay.logs import logging_config
from relay.store import open_store
from relay.store.base import Received

CALL = {"action": "create_lead", "method": "POST", "path": "/api/v1/leads",
        "query": {"lead_token": "${TD_TOKEN}"}, "secrets": {"lead_token": "TD_TOKEN"},
        "body": {"caller_id": "+15125550147", "email": "ana@example.com",
                 "data": {"first_name": "Ana", "last_name": "Diaz", "state": "TX"}},
        "base_url": None, "route": None}


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def queued(count: int) -> list[Received]:
    return [Received(source="generic-json", received_at=time.time(), method="POST",
                     content_type="application/json", query="", headers={}, body=b"{}",
                     client_addr="203.0.113.7", status="queued", call=CALL) for _ in range(count)]


def delivered(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM leads WHERE status = 'delivered'").fetchone()[0])


def one_round(standin: str, leads: int, concurrency: int, evented: bool) -> tuple[float, float]:
    """(delivered leads/s, CPU µs per delivered lead)."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "relay.db"
        store = open_store(f"sqlite:///{path}")
        for start in range(0, leads, 100):
            store.insert_batch(queued(min(100, leads - start)))
        client = TrackdriveClient(standin, env={"TD_TOKEN": "bench-token-123"})
        dispatcher = Dispatcher(store, client, RetryPolicy((1.0,), 0.0), owner="bench",
                                concurrency=concurrency, poll_interval_s=0.05, evented=evented)
        started_cpu, started = cpu_s(), time.perf_counter()
        dispatcher.start()
        while delivered(path) < leads:
            time.sleep(0.02)
        elapsed, used = time.perf_counter() - started, cpu_s() - started_cpu
        dispatcher.stop(5)
        store.close()
        return leads / elapsed, used / leads * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", action="store_true", help="a thread per call, not the evented sender")
    args = parser.parse_args()
    config = logging_config("INFO")
    config["handlers"]["stderr"]["stream"] = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the run
    logging.config.dictConfig(config)
    install_node_red()
    with tempfile.TemporaryDirectory() as directory:
        standin, url = start_standin(Path(directory))
        try:
            rounds = [one_round(url, args.leads, args.concurrency, not args.threads) for _ in range(args.rounds)]
        finally:
            standin.stop()
    print(f"{args.leads} leads, concurrency {args.concurrency}, {'threads' if args.threads else 'evented'}: "
          f"{statistics.median(r[0] for r in rounds):,.0f} delivered/s, "
          f"{statistics.median(r[1] for r in rounds):,.0f} µs CPU per delivered lead (median of {args.rounds})")


if __name__ == "__main__":
    main()
