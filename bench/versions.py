"""This tree against an earlier revision, side by side: ingest and speed to call.

    python bench/versions.py [--baseline REV] [--rounds 5] [--seconds 6] [--rate 100]

The baseline is exported with ``git archive`` into a temporary directory and served by the
same virtual environment (its own package first on PYTHONPATH), with its own shipped mappings
and its own SQLite outbox; both relays use the same gunicorn settings and deliver to one
sandbox answering at once. Ingest: wrk (bench/lead.lua) against each relay with delivery off,
rounds interleaved, reporting the median of the per-round ratios and the CPU each relay's
processes used per acked lead (from /proc). Speed to call: the same
leads posted at ``--rate`` per second to each relay in alternating blocks, with delivery on;
latency is the sandbox's receipt time minus the relay's received_at. Prints Markdown tables.
"""
from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from harness import (
    GUNICORN_SETTINGS,
    ROOT,
    SHIPPED_SECRETS,
    VENV_BIN,
    Process,
    WrkResult,
    cpu_seconds,
    free_port,
    process_tree,
    run_wrk,
    sandbox,
    wait_until,
)


@dataclass
class Relay:
    name: str
    checkout: Path
    workdir: Path
    sandbox_url: str
    delivery: str
    port: int = 0
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.workdir / 'relay.db'}"

    def start(self) -> Relay:
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.checkout / "mappings", self.workdir / "mappings")
        self.port = free_port()
        env = {**SHIPPED_SECRETS, **GUNICORN_SETTINGS, "PYTHONPATH": str(self.checkout),
               "RELAY_BIND": f"127.0.0.1:{self.port}", "RELAY_DATABASE_URL": self.database_url,
               "RELAY_MAPPINGS_DIR": str(self.workdir / "mappings"), "TRACKDRIVE_BASE_URL": self.sandbox_url,
               "RELAY_DELIVERY": self.delivery, "RELAY_DRAIN_SECONDS": "0", "RELAY_POLL_INTERVAL": "0.2"}
        self.process = Process([str(VENV_BIN / "relay"), "serve"], log_path=self.workdir / "relay.log",
                               env=env, cwd=self.checkout).start()
        self.process.wait_http(f"{self.url}/healthz", timeout_s=60)
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()


def export(revision: str, into: Path) -> Path:
    archive = into / "baseline.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), revision], check=True)
    target = into / "baseline"
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


@dataclass
class Round:
    wrk: WrkResult
    cpu_us_per_ack: float  # every process of the relay (master and workers), user + system


def ingest(relays: list[Relay], rounds: int, seconds: int) -> dict[str, list[Round]]:
    for relay in relays:
        run_wrk(relay.url, seconds=2)  # warm-up
    results: dict[str, list[Round]] = {relay.name: [] for relay in relays}
    for number in range(rounds):
        for relay in relays if number % 2 == 0 else reversed(relays):
            assert relay.process is not None and relay.process.popen is not None
            pids = process_tree(relay.process.popen.pid)
            before = cpu_seconds(pids)
            run = run_wrk(relay.url, seconds=seconds)
            results[relay.name].append(Round(run, (cpu_seconds(pids) - before) / max(run.acked, 1) * 1e6))
        print(f"ingest round {number + 1}: " + ", ".join(
            f"{name} {runs[-1].wrk.acked_per_s:,.0f}/s" for name, runs in results.items()), flush=True)
    return results


def post_block(session: requests.Session, relay: Relay, count: int, rate: float, tag: str) -> list[str]:
    ids, interval, start = [], 1.0 / rate, time.monotonic()
    for i in range(count):
        time.sleep(max(0.0, start + i * interval - time.monotonic()))
        lead = {"lead_id": f"{tag}-{i}", "phone": f"+1512555{i % 10000:04d}", "first_name": "Bench"}
        response = session.post(f"{relay.url}/hooks/generic-json", json=lead,
                                 headers={"X-Api-Key": SHIPPED_SECRETS["GENERIC_JSON_API_KEY"]}, timeout=10)
        ids.append(response.json()["lead_id"])
    return ids


def speed_to_call(relays: list[Relay], sandbox_url: str, rate: float, blocks: int,
                  per_block: int) -> dict[str, list[float]]:
    session = requests.Session()
    sent: dict[str, list[str]] = {relay.name: [] for relay in relays}
    for block in range(blocks):
        for relay in relays if block % 2 == 0 else reversed(relays):
            sent[relay.name] += post_block(session, relay, per_block, rate, f"{relay.name}-{block}")
    wanted = {lead_id for ids in sent.values() for lead_id in ids}

    def received() -> dict[str, float] | None:
        records = requests.get(f"{sandbox_url}/_sandbox/received", timeout=30).json()
        times = {r["lead_id"]: r["time"] for r in records if r.get("lead_id") in wanted
                 and r["answer"]["fate"] == "accepted"}
        return times if len(times) == len(wanted) else None

    times = wait_until(received, timeout_s=120) or {}
    latencies: dict[str, list[float]] = {}
    for relay in relays:
        # Read with plain SQL: the two revisions' stores may not share a schema.
        with sqlite3.connect(relay.workdir / "relay.db") as conn:
            received_at = dict(conn.execute("SELECT id, received_at FROM leads").fetchall())
        latencies[relay.name] = [(times[i] - received_at[i]) * 1000 for i in sent[relay.name] if i in times]
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default="HEAD~1", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--per-block", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_checkout = export(args.baseline, Path(tmp))
        sandbox_port = free_port()
        stand_in = sandbox(sandbox_port, Path(tmp) / "sandbox.log").start()
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        stand_in.wait_http(f"{sandbox_url}/_sandbox/stats")
        relays = [Relay(name, checkout, Path(tmp) / f"{name}-{delivery}", sandbox_url, delivery)
                  for delivery in ("off", "on") for name, checkout in (("this tree", ROOT),
                                                                      (args.baseline, base_checkout))]
        try:
            for relay in relays:
                relay.start()
            acks = ingest([r for r in relays if r.delivery == "off"], args.rounds, args.seconds)
            latencies = speed_to_call([r for r in relays if r.delivery == "on"], sandbox_url, args.rate,
                                      args.blocks, args.per_block)
        finally:
            for relay in relays:
                relay.stop()
            stand_in.stop()
    this, base = "this tree", args.baseline
    ratios = [a.wrk.acked_per_s / b.wrk.acked_per_s for a, b in zip(acks[this], acks[base], strict=True)
              if b.wrk.acked_per_s]
    print(f"\n| ingest, delivery off ({args.rounds} interleaved rounds of {args.seconds} s) "
          "| acked leads/s (median round) | p50 ms | p99 ms | CPU µs per acked lead (median) |")
    print("|---|---:|---:|---:|---:|")
    for name in (this, base):
        runs = sorted(acks[name], key=lambda r: r.wrk.acked_per_s)
        middle = runs[len(runs) // 2].wrk
        cpu = statistics.median(r.cpu_us_per_ack for r in runs)
        print(f"| {name} | {middle.acked_per_s:,.0f} | {middle.p50_ms:.1f} | {middle.p99_ms:.1f} | {cpu:,.0f} |")
    print(f"\nmedian of round ratios, this tree / {base}: **{statistics.median(ratios):.2f}x**")
    print(f"\n| speed to call at {args.rate:.0f} leads/s | leads | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for name in (this, base):
        values = latencies[name]
        print(f"| {name} | {len(values)} | {percentile(values, 0.5):.1f} | {percentile(values, 0.99):.1f} "
              f"| {max(values, default=float('nan')):.1f} |")


if __name__ == "__main__":
    main()
