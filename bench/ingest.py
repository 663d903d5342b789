"""Ingest: acknowledged leads/s of the relay against a bare Flask+SQLite endpoint, side by side.

    python bench/ingest.py [--seconds 10] [--rounds 2] [--connections 32]

Both run under gunicorn with the same settings (2 workers, gthread, 16 threads: the relay's defaults) and the same
wrk load (bench/lead.lua: a distinct JSON lead per request), in alternating rounds so that
machine noise hits both. The relay is measured with delivery on (the sandbox answering at
once, as in production) and with delivery off (RELAY_DELIVERY=off: ingest alone).
Target: relay >= 0.8x bare. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from harness import Stack, WrkResult, bare_server, free_port, relay_stack, run_wrk


def measure_bare(workdir: Path, args: argparse.Namespace) -> WrkResult:
    port = free_port()
    with bare_server(workdir, port) as server:
        server.wait_http(f"http://127.0.0.1:{port}/")
        return run_wrk(f"http://127.0.0.1:{port}", seconds=args.seconds, connections=args.connections,
                       path="/lead")


def measure_relay(workdir: Path, args: argparse.Namespace, *, delivery: bool) -> WrkResult:
    stack: Stack = relay_stack(workdir, RELAY_DELIVERY="on" if delivery else "off")
    stack.start()
    try:
        return run_wrk(stack.url, seconds=args.seconds, connections=args.connections)
    finally:
        stack.stop()


def row(name: str, results: list[WrkResult], baseline: float) -> str:
    rate = statistics.mean(r.acked_per_s for r in results)
    p99 = statistics.mean(r.p99_ms for r in results)
    p50 = statistics.mean(r.p50_ms for r in results)
    errors = sum(r.refused + r.socket_errors for r in results)
    return f"| {name} | {rate:,.0f} | {rate / baseline:.2f}x | {p50:.1f} | {p99:.1f} | {errors} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    runs: dict[str, list[WrkResult]] = {"bare": [], "relay": [], "relay_no_delivery": []}
    for round_no in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp)
            for name in runs:
                workdir = base / f"{name}-{round_no}"
                workdir.mkdir()
                if name == "bare":
                    runs[name].append(measure_bare(workdir, args))
                else:
                    runs[name].append(measure_relay(workdir, args, delivery=(name == "relay")))
                print(f"round {round_no + 1} {name}: {runs[name][-1].acked_per_s:,.0f} acked/s", flush=True)
    baseline = statistics.mean(r.acked_per_s for r in runs["bare"])
    print("\n| endpoint | acked leads/s | vs bare | p50 ms | p99 ms | non-2xx + socket errors |")
    print("|---|---:|---:|---:|---:|---:|")
    print(row("bare Flask + SQLite insert (synchronous=FULL)", runs["bare"], baseline))
    print(row("relay, delivery on (sandbox)", runs["relay"], baseline))
    print(row("relay, delivery off", runs["relay_no_delivery"], baseline))


if __name__ == "__main__":
    main()
