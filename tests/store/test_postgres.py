"""What only the PostgreSQL outbox promises: URLs, schemas, racing instances, outages."""
from __future__ import annotations

import multiprocessing
import threading
from typing import Any, Iterator
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from relay.errors import StoreUnavailable
from relay.store import open_store
from relay.store.base import PENDING_STATUSES
from relay.store.pg_migrations import MIGRATIONS
from relay.store.postgres import PostgresLocation, PostgresStore
from tests.store.factory import T0, received
from tests.support import postgres
from tests.support.tcpproxy import TcpProxy

LATEST = MIGRATIONS[-1][0]


@pytest.fixture
def schema() -> Iterator[str]:
    postgres.require_postgres()
    name = postgres.new_schema_name("pg")
    yield name
    postgres.drop_schema(name)


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    postgres.require_postgres()
    server = urlsplit(postgres.SERVER_URL)
    forwarder = TcpProxy((server.hostname or "127.0.0.1", server.port or 5432)).start()
    yield forwarder
    forwarder.cut()


def proxied_url(proxy: TcpProxy, schema: str) -> str:
    server = urlsplit(postgres.SERVER_URL)
    return f"postgresql://{server.username or ''}@127.0.0.1:{proxy.port}{server.path}?schema={schema}"


def _tables(schema: str) -> set[str]:
    with psycopg.connect(postgres.SERVER_URL, autocommit=True) as conn:
        return {row[0] for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))}


# --- URLs ---

def test_url_parameters_of_our_own_are_taken_out_and_the_rest_passed_to_libpq() -> None:
    location = PostgresLocation.parse(
        "postgresql://relay:pw@db.internal:6432/relay?schema=relay_a&pool_size=4&sslmode=require")
    assert location.schema == "relay_a" and location.pool_size == 4
    assert location.conninfo == "postgresql://relay:pw@db.internal:6432/relay?sslmode=require"
    kwargs = location.connect_kwargs(2.0)
    assert kwargs["options"] == "-csearch_path=relay_a" and kwargs["connect_timeout"] == 2


def test_a_url_connect_timeout_wins_and_no_schema_means_the_default_path() -> None:
    location = PostgresLocation.parse("postgres://db/relay?connect_timeout=7")
    assert location.schema is None
    assert "connect_timeout" not in location.connect_kwargs(2.0)
    assert "options" not in location.connect_kwargs(2.0)


@pytest.mark.parametrize("url, message", [
    ("postgresql://db/relay?schema=x;drop", "invalid schema"),
    ("postgresql://db/relay?schema=1abc", "invalid schema"),
    ("postgresql://db/relay?pool_size=0", "pool_size"),
    ("postgresql://db/relay?pool_size=many", "pool_size"),
])
def test_bad_url_parameters_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PostgresStore(url)


# --- schema and migrations ---

def test_migrate_creates_the_schema_and_records_each_version_once(schema: str) -> None:
    store = open_store(postgres.schema_url(schema))
    store.migrate()
    assert {"leads", "attempts", "dedupe_keys", "heartbeat", "schema_migrations"} <= _tables(schema)
    assert store.schema_version() == LATEST  # type: ignore[attr-defined]
    store.close()


def test_the_claim_index_covers_every_pending_status(schema: str) -> None:
    open_store(postgres.schema_url(schema)).close()
    with psycopg.connect(postgres.SERVER_URL, autocommit=True) as conn:
        [definition] = [row[0] for row in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = 'leads_claimable'",
            (schema,))]
    assert all(f"'{status}'" in definition for status in PENDING_STATUSES)


def _migrate_in_process(url: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        store = open_store(url)
        store.close()
        results.put("ok")
    except Exception as exc:  # reported to the parent, which asserts
        results.put(f"{type(exc).__name__}: {exc}")


def test_instances_starting_together_migrate_once(schema: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_migrate_in_process,
                               args=(postgres.schema_url(schema), barrier, results))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join()
    assert outcomes == ["ok"] * 4
    with psycopg.connect(postgres.SERVER_URL, autocommit=True) as conn:
        versions = [row[0] for row in conn.execute(
            sql.SQL("SELECT version FROM {}.schema_migrations").format(sql.Identifier(schema)))]
    assert versions == [version for version, _ in MIGRATIONS]


# --- racing instances ---

def _insert_in_process(url: str, barrier: Any, results: Any) -> None:
    store = open_store(url, migrate=False)
    barrier.wait()
    lead, created = store.insert(received(dedupe_key="evt-race", dedupe_window_s=600))
    store.close()
    results.put((lead.id, created))


def test_the_same_retry_at_two_processes_at_once_is_one_lead(schema: str) -> None:
    url = postgres.schema_url(schema)
    open_store(url).close()
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(6), context.Queue()
    workers = [context.Process(target=_insert_in_process, args=(url, barrier, results))
               for _ in range(6)]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join()
    assert sum(created for _, created in answers) == 1
    assert len({lead_id for lead_id, _ in answers}) == 1
    store = open_store(url, migrate=False)
    assert len(store.list()) == 1
    store.close()


# --- outages ---

def test_unreachable_database_fails_fast_with_a_reason(schema: str) -> None:
    store = PostgresStore(f"postgresql://127.0.0.1:1/test?schema={schema}", connect_timeout_s=1)
    with pytest.raises(StoreUnavailable) as raised:
        store.check_writable()
    assert "refused" in str(raised.value).lower()
    with pytest.raises(StoreUnavailable):
        store.insert(received())
    with pytest.raises(StoreUnavailable):
        store.claim_due("w1", 10, 60, T0)
    store.close()


def test_writes_fail_while_the_database_is_away_and_recover_without_a_restart(
        proxy: TcpProxy, schema: str) -> None:
    store = open_store(proxied_url(proxy, schema))
    before, _ = store.insert(received())
    store.check_writable()

    proxy.cut()
    for attempt in range(3):
        with pytest.raises(StoreUnavailable):
            store.insert(received(request_id=f"during-{attempt}"))
    with pytest.raises(StoreUnavailable) as raised:
        store.check_writable()
    assert raised.value.details["reason"]

    proxy.restore()
    after = _first_success(lambda: store.insert(received(request_id="after"))[0])
    assert after is not None, "the store did not recover after the database came back"
    assert {lead.id for lead in store.list()} == {before.id, after.id}
    store.check_writable()
    store.close()


def _first_success(action: Any, tries: int = 60) -> Any:
    """Keep trying like a vendor would; bounded by tries, each bounded by the pool timeout."""
    stop = threading.Event()
    for _ in range(tries):
        try:
            return action()
        except StoreUnavailable:
            stop.wait(0.25)
    return None


# --- defer (delivery paused) ---

def test_defer_gives_the_lease_back_without_spending_an_attempt(schema: str) -> None:
    store = open_store(postgres.schema_url(schema))
    lead, _ = store.insert(received())
    store.claim(lead.id, "w1", 60, T0)
    assert not store.defer(lead.id, "w2", T0 + 30, T0 + 1)
    assert store.defer(lead.id, "w1", T0 + 30, T0 + 1)
    after = store.get(lead.id)
    assert after is not None
    assert (after.status, after.attempts, after.next_attempt_at, after.lease_owner) == (
        "queued", 0, T0 + 30, None)
    assert store.claim_due("w2", 10, 60, T0 + 29) == []
    assert [due.id for due in store.claim_due("w2", 10, 60, T0 + 30)] == [lead.id]
    assert store.attempts(lead.id) == []
    store.close()
