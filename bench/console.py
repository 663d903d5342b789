"""The console at a million leads: the leads list, a phone search and the overview, p50 and p95.

    python bench/console.py [--leads 1000000] [--rounds 30] [--backend sqlite|postgres|both]

Fills a fresh outbox (SQLite file, and a PostgreSQL schema) with --leads leads over 30 days,
7 sources and every status, by bulk insert (executemany in one transaction; COPY on
PostgreSQL), then asks the console's pages through the real Flask app, logged in, as a
browser would. Target: each page answers in under 200 ms (p50). Rounds of the pages are
interleaved so machine noise spreads over all of them.
"""
from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from relay.intake.registry import SourceRegistry
from relay.settings import Settings
from relay.store import new_lead_id, open_store
from relay.store.base import Received
from relay.store.rows import LEAD_FIELDS, new_lead_row
from relay.web import create_app
from tests.support import postgres

TOKEN = "bench-console-token"
SOURCES = ("facebook-lead", "facebook-leadgen", "generic-form", "generic-json", "leadspedia", "typeform",
           "unbounce")
# Mostly delivered, as a real outbox is between purges.
STATUS_WEIGHTS = (("delivered", 90), ("rejected", 4), ("dropped", 2), ("dead", 2), ("retry", 1), ("queued", 1))
DAYS = 30
BATCH = 20_000
WANTED_PHONE = "+15125550147"


def rows(count: int, now: float) -> Iterator[dict[str, Any]]:
    rng = random.Random(7)
    statuses = [status for status, weight in STATUS_WEIGHTS for _ in range(weight)]
    start = now - DAYS * 86_400
    for index in range(count):
        at = start + (DAYS * 86_400) * index / count
        status = rng.choice(statuses)
        phone = WANTED_PHONE if index % 100_000 == 0 else f"+1512{rng.randrange(2000000, 9999999):07d}"
        call = None if status in ("rejected", "dropped") else {
            "action": "create_lead", "method": "POST", "path": "/api/v1/leads", "query": {},
            "body": {"caller_id": phone, "email": f"lead{index}@example.com"}, "secrets": {}}
        received = Received(source=SOURCES[index % len(SOURCES)], received_at=at, method="POST",
                            content_type="application/json", query="", headers={"User-Agent": "bench"},
                            body=b'{"phone": "%s"}' % phone.encode(), client_addr="203.0.113.7", status=status,
                            call=call, error=None if call else {"code": "lead_refused", "field": "caller_id"},
                            mapping_version="bench")
        row = new_lead_row(new_lead_id(at), received)
        if call is None:  # a refused lead still has its phone in the body, not in the call
            row["caller_id"] = row["email"] = None
        yield row


def fill_sqlite(path: Path, count: int, now: float) -> str:
    import sqlite3

    url = f"sqlite:///{path}"
    open_store(url).close()
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    insert = f"INSERT INTO leads ({', '.join(LEAD_FIELDS)}) VALUES ({', '.join(':' + f for f in LEAD_FIELDS)})"
    conn.execute("BEGIN")
    batch: list[dict[str, Any]] = []
    for row in rows(count, now):
        batch.append(row)
        if len(batch) == BATCH:
            conn.executemany(insert, batch)
            batch.clear()
    conn.executemany(insert, batch)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return url


def fill_postgres(schema: str, count: int, now: float) -> str:
    import psycopg

    url = postgres.schema_url(schema)
    open_store(url).close()
    with psycopg.connect(postgres.SERVER_URL, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        with conn.cursor() as cursor, cursor.copy(f"COPY leads ({', '.join(LEAD_FIELDS)}) FROM STDIN") as copy:
            for row in rows(count, now):
                copy.write_row([row[name] for name in LEAD_FIELDS])
        conn.execute("ANALYZE leads")
    return url


def console_client(url: str) -> Any:
    settings = Settings.from_env({"RELAY_DATABASE_URL": url, "RELAY_ADMIN_TOKEN": TOKEN,
                                  "RELAY_MAPPINGS_DIR": str(ROOT / "mappings"), "RELAY_DELIVERY": "0"})
    app = create_app(settings, registry=SourceRegistry.load(ROOT / "mappings"))
    client = app.test_client()
    page = client.get("/admin/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert client.post("/admin/login", data={"token": TOKEN, "csrf_token": csrf}).status_code == 302
    return client


def measure(client: Any, rounds: int) -> dict[str, tuple[float, float]]:
    pages: dict[str, str] = {
        "leads list (newest 50)": "/admin/leads",
        "leads list, source + status": "/admin/leads?source=generic-json&status=dead",
        "leads list, page 2": "",
        "phone search": "/admin/leads?q=(512)+555-0147",
        "overview (24 h)": "/admin/",
    }
    first = client.get("/admin/leads").get_data(as_text=True)
    pages["leads list, page 2"] = re.search(r'id="next-page" href="([^"]+)"', first).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    timings: dict[str, list[float]] = {name: [] for name in pages}
    for _ in range(rounds):
        for name, path in pages.items():
            started = time.perf_counter()
            answer = client.get(path)
            timings[name].append(time.perf_counter() - started)
            assert answer.status_code == 200, (path, answer.status_code)
    return {name: (statistics.median(values) * 1000, statistics.quantiles(values, n=20)[18] * 1000)
            for name, values in timings.items()}


def report(label: str, fill_s: float, results: dict[str, tuple[float, float]]) -> None:
    print(f"\n{label} (filled in {fill_s:.0f} s)")
    print("| page | p50 ms | p95 ms |\n|---|---:|---:|")
    for name, (p50, p95) in results.items():
        print(f"| {name} | {p50:.1f} | {p95:.1f} |")


def run(label: str, fill: Callable[[], str], rounds: int) -> None:
    started = time.perf_counter()
    url = fill()
    fill_s = time.perf_counter() - started
    report(label, fill_s, measure(console_client(url), rounds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    now = time.time()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="bench-console-") as workdir:
            run(f"SQLite, {args.leads:,} leads", lambda: fill_sqlite(Path(workdir) / "relay.db", args.leads, now),
                args.rounds)
    if args.backend in ("postgres", "both"):
        if postgres.unavailable_reason():
            print(postgres.unavailable_reason(), file=sys.stderr)
            return 1
        schema = postgres.new_schema_name("bench")
        try:
            run(f"PostgreSQL, {args.leads:,} leads", lambda: fill_postgres(schema, args.leads, now), args.rounds)
        finally:
            postgres.drop_schema(schema)
    return 0


if __name__ == "__main__":
    sys.exit(main())
