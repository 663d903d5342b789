"""Scale-out: ingest on SQLite vs PostgreSQL, one instance vs two behind nginx.

    python bench/scale.py [--seconds 10] [--connections 32] [--threads 2] [--phase-n 2000]

Three deployments, all in one run, loaded by the same wrk script (bench/lead.lua:
a distinct JSON lead per request to /hooks/generic-json, 2xx answers counted) with
the same gunicorn settings (the relay's defaults: 2 workers x 16 threads, gthread):

* one instance, SQLite outbox (synchronous=FULL);
* one instance, PostgreSQL outbox (a fresh schema in RELAY_TEST_POSTGRES_URL's database);
* two instances on that PostgreSQL schema behind nginx (deploy/nginx.conf).

Delivery is off (RELAY_DELIVERY=off) so every CPU cycle measured is intake: read,
map, commit, answer. All three run side by side (idle when not loaded); after a
2 s warm-up each, ``--rounds`` interleaved runs are measured and the median round
kept. Reported: acknowledged (2xx) leads/s, ratio to the SQLite instance, p50/p99
ack latency. Then where the time goes per lead, measured in one process and thread:
mapping (parse + map) against one outbox commit on each backend. Prints Markdown.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from relay.intake.lint import load_directory
from relay.mapping.httpfile import parse_http_file
from relay.mapping.model import TrackdriveCall
from relay.store import open_store
from relay.store.base import Received, Store
from tests.scale.cluster import nginx
from tests.support import postgres
from tests.support.procs import Process, free_port, gunicorn

from harness import GUNICORN_SETTINGS, WrkResult, require_wrk, run_wrk

MAPPINGS = ROOT / "mappings"
FIXTURE = MAPPINGS / "fixtures" / "generic-json" / "lead.http"
SECRETS = {"GENERIC_JSON_LEAD_TOKEN": "generic-json-token-6e5d", "GENERIC_JSON_API_KEY": "example-key"}


@dataclass(frozen=True)
class Row:
    name: str
    result: WrkResult


def relay_env(database_url: str) -> dict[str, str]:
    return {**SECRETS, **GUNICORN_SETTINGS, "RELAY_DATABASE_URL": database_url,
            "RELAY_MAPPINGS_DIR": str(MAPPINGS), "RELAY_DELIVERY": "off",
            "TRACKDRIVE_BASE_URL": "http://127.0.0.1:9"}


def start_relay(workdir: Path, name: str, database_url: str) -> tuple[Process, int]:
    port = free_port()
    relay = gunicorn(port, workdir / f"{name}.log", relay_env(database_url),
                     workers=int(GUNICORN_SETTINGS["RELAY_WORKERS"])).start()
    relay.wait_http(f"http://127.0.0.1:{port}/healthz")
    return relay, port


@dataclass
class Deployment:
    name: str
    url: str
    processes: list[Process]


def single(workdir: Path, name: str, database_url: str) -> Deployment:
    relay, port = start_relay(workdir, name.replace(" ", ""), database_url)
    return Deployment(name, f"http://127.0.0.1:{port}", [relay])


def pair(workdir: Path, database_url: str) -> Deployment:
    started = [start_relay(workdir, f"pair-{i}", database_url) for i in range(2)]
    proxy_port = free_port()
    proxy = nginx(nginx_binary(), workdir / "nginx", proxy_port, (started[0][1], started[1][1])).start()
    deployment = Deployment("2 × PostgreSQL behind nginx", f"http://127.0.0.1:{proxy_port}",
                            [proxy, *(relay for relay, _ in started)])
    proxy.wait_http(f"{deployment.url}/healthz")
    return deployment


def measure_rounds(deployments: list[Deployment], args: argparse.Namespace) -> list[Row]:
    """Rounds interleave the deployments, so a noisy moment on the machine hits them all alike."""
    results: dict[str, list[WrkResult]] = {deployment.name: [] for deployment in deployments}
    for deployment in deployments:  # warm-up: first connections, first pages of each database
        run_wrk(deployment.url, seconds=2, connections=args.connections, threads=args.threads)
    for _ in range(args.rounds):
        for deployment in deployments:
            results[deployment.name].append(run_wrk(deployment.url, seconds=args.seconds,
                                                    connections=args.connections, threads=args.threads))
    return [Row(name, _median_round(rounds)) for name, rounds in results.items()]


def _median_round(rounds: list[WrkResult]) -> WrkResult:
    return sorted(rounds, key=lambda result: result.acked_per_s)[len(rounds) // 2]


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("/usr/sbin/nginx")
    if not found:
        sys.exit("nginx is needed: apt-get install -y nginx-light")
    return found


# --- where the time goes ---

def phase_us(run: Callable[[int], object], n: int) -> tuple[float, float]:
    samples = []
    for index in range(n):
        start = time.perf_counter_ns()
        run(index)
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[min(n - 1, int(0.99 * n))]


def phases(workdir: Path, pg_url: str, n: int) -> list[tuple[str, float, float]]:
    sources, _ = load_directory(MAPPINGS)
    source = sources["generic-json"]
    request = parse_http_file(FIXTURE.read_bytes())
    outcome = source.map(request)
    assert isinstance(outcome, TrackdriveCall), outcome
    call = outcome.to_dict()

    def received(index: int) -> Received:
        return Received(source="generic-json", received_at=time.time(), method="POST",
                        content_type=request.content_type, query="", headers=dict(request.headers),
                        body=request.body, client_addr="127.0.0.1", status="queued", call=call,
                        dedupe_key=f"phase-{index}", dedupe_window_s=86400.0)

    rows = [("parse + map (generic-json)", *phase_us(lambda _: source.map(request), n))]
    for label, url in (("commit, SQLite (FULL)", f"sqlite:///{workdir / 'phase.db'}"),
                       ("commit, PostgreSQL", pg_url)):
        store: Store = open_store(url)
        try:
            rows.append((label, *phase_us(lambda i, store=store: store.insert(received(i)), n)))
            rows.append((f"whole request in-process (Flask test client), {label.split(', ')[1]}",
                         *whole_request_us(store, request.body, n)))
        finally:
            store.close()
    return rows


def whole_request_us(store: Store, body: bytes, n: int) -> tuple[float, float]:
    """The relay's own request path without gunicorn, sockets or load: routing, auth, map, commit."""
    from relay.settings import Settings
    from relay.web import create_app

    settings = Settings(mappings_dir=str(MAPPINGS), delivery_enabled=False, env=SECRETS)
    client = create_app(settings, store=store).test_client()
    headers = {"Content-Type": "application/json", "X-Api-Key": SECRETS["GENERIC_JSON_API_KEY"]}

    def post(index: int) -> None:
        distinct = body.replace(b'"L-20251127-0042"', f'"phase-web-{index}"'.encode())
        answer = client.post("/hooks/generic-json", data=distinct, headers=headers)
        assert answer.status_code == 202, answer.get_data(as_text=True)

    return phase_us(post, n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="measured runs per deployment (median kept)")
    parser.add_argument("--phase-n", type=int, default=2000, help="leads per phase timing")
    args = parser.parse_args(argv)
    require_wrk()
    if postgres.unavailable_reason():
        sys.exit(postgres.unavailable_reason())

    schemas = [postgres.new_schema_name("bench") for _ in range(3)]
    deployments: list[Deployment] = []
    with tempfile.TemporaryDirectory(prefix="relay-scale-") as directory:
        workdir = Path(directory)
        try:
            deployments = [single(workdir, "1 × SQLite", f"sqlite:///{workdir / 'relay.db'}"),
                           single(workdir, "1 × PostgreSQL", postgres.schema_url(schemas[0])),
                           pair(workdir, postgres.schema_url(schemas[1]))]
            rows = measure_rounds(deployments, args)
            for deployment in deployments:
                for process in deployment.processes:
                    process.stop()
            timings = phases(workdir, postgres.schema_url(schemas[2]), args.phase_n)
        finally:
            for deployment in deployments:
                for process in deployment.processes:
                    process.stop()
            for schema in schemas:
                postgres.drop_schema(schema)

    baseline = rows[0].result.acked_per_s or 1.0
    print(f"## Ingest: wrk -t{args.threads} -c{args.connections}, {args.rounds} interleaved rounds of "
          f"{args.seconds} s (median round), gunicorn {GUNICORN_SETTINGS}, delivery off, "
          f"{os.cpu_count()} CPUs\n")
    print("| deployment | acked leads/s | ratio to 1 × SQLite | p50 ms | p99 ms | non-2xx | socket errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        result = row.result
        print(f"| {row.name} | {result.acked_per_s:.0f} | {result.acked_per_s / baseline:.2f} "
              f"| {result.p50_ms:.1f} | {result.p99_ms:.1f} | {result.refused} | {result.socket_errors} |")
    print(f"\n## Where the time goes (one thread, {args.phase_n} leads, µs per lead)\n")
    print("| phase | median | p99 |")
    print("|---|---:|---:|")
    for label, median, p99 in timings:
        print(f"| {label} | {median:.0f} | {p99:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
