"""Ingest: acknowledged leads/s of the relay against a bare Flask+SQLite endpoint, side by side.

    python bench/ingest.py [--seconds 6] [--rounds 5] [--connections 32]

Both run under gunicorn with the same settings (the relay's defaults: 2 workers, gthread, 16
threads) and the same wrk load (bench/lead.lua: a distinct JSON lead per request). All three
servers are started first and stay up (idle when not loaded); after a warm-up each, rounds
interleave them, so a noisy moment on this shared 2-CPU machine hits all alike. Reported: the
median round of each, and the median of the per-round ratios relay / bare (each ratio pairs
runs seconds apart). The relay is measured with delivery off (RELAY_DELIVERY=off: ingest alone)
and with delivery on to the sandbox answering at once, which then shares the same 2 CPUs; after
each of its rounds the next waits until its backlog is delivered, so it steals no CPU from them.
Target: relay >= 0.8x bare. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from relay.store import open_store

from harness import Stack, WrkResult, bare_server, free_port, relay_stack, run_wrk, wait_until


def start_all(workdir: Path) -> tuple[dict[str, str], list, Stack]:
    port = free_port()
    bare = bare_server(workdir, port).start()
    bare.wait_http(f"http://127.0.0.1:{port}/")
    stacks: list[Stack] = []
    urls = {"bare": f"http://127.0.0.1:{port}"}
    for name, delivery in (("relay, delivery off", "off"), ("relay, delivery on (sandbox)", "on")):
        (workdir / name[:14].replace(" ", "-").replace(",", "")).mkdir(exist_ok=True)
        stack = relay_stack(workdir / name[:14].replace(" ", "-").replace(",", "") / delivery,
                            RELAY_DELIVERY=delivery)
        stack.workdir.mkdir(parents=True, exist_ok=True)
        stacks.append(stack.start())
        urls[name] = stack.url
    return urls, [bare, *stacks], stacks[-1]


def measure(urls: dict[str, str], delivering: Stack, args: argparse.Namespace) -> dict[str, list[WrkResult]]:
    outbox = open_store(delivering.database_url)

    def load(name: str, seconds: int) -> WrkResult:
        path = "/lead" if name == "bare" else "/hooks/generic-json"
        result = run_wrk(urls[name], seconds=seconds, connections=args.connections, path=path)
        if urls[name] == delivering.url:
            # Its backlog must not steal the CPU from the next measurement.
            wait_until(lambda: outbox.pending_stats(time.time()).pending == 0, timeout_s=600)
        return result

    for name in urls:  # warm-up: connections, first pages of each database
        load(name, 2)
    results: dict[str, list[WrkResult]] = {name: [] for name in urls}
    for round_no in range(args.rounds):
        for name in urls:
            results[name].append(load(name, args.seconds))
        print(f"round {round_no + 1}: " + ", ".join(f"{name} {rs[-1].acked_per_s:,.0f}/s"
                                                  for name, rs in results.items()), flush=True)
    return results


def median_round(rounds: list[WrkResult]) -> WrkResult:
    return sorted(rounds, key=lambda result: result.acked_per_s)[len(rounds) // 2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        urls, processes, delivering = start_all(Path(tmp))
        try:
            results = measure(urls, delivering, args)
        finally:
            for process in processes:
                process.stop()
    bare = results["bare"]
    print("\n| endpoint | acked leads/s (median round) | median of round ratios vs bare | p50 ms | p99 ms "
          "| non-2xx + socket errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, rounds in results.items():
        ratio = statistics.median(r.acked_per_s / b.acked_per_s for r, b in zip(rounds, bare, strict=True))
        typical = median_round(rounds)
        errors = sum(r.refused + r.socket_errors for r in rounds)
        label = "bare Flask + SQLite insert (synchronous=FULL)" if name == "bare" else name
        print(f"| {label} | {typical.acked_per_s:,.0f} | {ratio:.2f}x | {typical.p50_ms:.1f} "
              f"| {typical.p99_ms:.1f} | {errors} |")


if __name__ == "__main__":
    main()
