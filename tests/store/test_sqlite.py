"""What only the SQLite outbox promises: pragmas, migrations, failure modes, threads."""
from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from relay.errors import StoreUnavailable
from relay.store import open_store
from relay.store.base import Settlement
from relay.store.migrations import MIGRATIONS
from relay.store.sqlite import SQLiteStore
from tests.store.factory import T0, received

LATEST = MIGRATIONS[-1][0]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "relay.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(db_path)
    opened.migrate()
    yield opened
    opened.close()


class ReadOnlyStore(SQLiteStore):
    """Refuses writes as a read-only file would (root ignores chmod, so use query_only)."""

    def _configure(self, conn: sqlite3.Connection) -> None:
        super()._configure(conn)
        conn.execute("PRAGMA query_only = ON")


class FullStore(SQLiteStore):
    """The database may not grow by one page: SQLite answers SQLITE_FULL, as on a full disk."""

    def _configure(self, conn: sqlite3.Connection) -> None:
        super()._configure(conn)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")


def _pragma(store: SQLiteStore, name: str) -> Any:
    return store._connection().execute(f"PRAGMA {name}").fetchone()[0]


# --- opening ---

def test_creates_parent_directories_and_uses_wal_and_full_sync(store: SQLiteStore,
                                                                db_path: Path) -> None:
    assert db_path.is_file()
    assert _pragma(store, "journal_mode") == "wal"
    assert _pragma(store, "synchronous") == 2  # FULL
    assert _pragma(store, "busy_timeout") == 5000


def test_normal_synchronous_is_allowed(db_path: Path) -> None:
    store = open_store(f"sqlite:///{db_path}", synchronous="normal")
    assert _pragma(store, "synchronous") == 1  # type: ignore[arg-type]
    store.close()


def test_unknown_synchronous_mode_is_refused(db_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteStore(db_path, synchronous="OFF")


def test_relative_url_is_relative_to_the_working_directory(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///var/relay.db")
    store.check_writable()
    store.close()
    assert (tmp_path / "var" / "relay.db").is_file()


@pytest.mark.parametrize("url, message", [
    ("mysql://db/relay", "unknown database URL scheme 'mysql'"),
    ("postgresql://relay@db/relay?schema=bad-name", "invalid schema 'bad-name'"),
    ("sqlite:///:memory:", "not supported"),
    ("sqlite://", "invalid SQLite database URL"),
])
def test_bad_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)


# --- migrations ---

def _versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]


def test_migrations_are_recorded_once_and_idempotent(store: SQLiteStore, db_path: Path) -> None:
    store.migrate()
    store.migrate()
    assert _versions(db_path) == [version for version, _ in MIGRATIONS]
    assert _pragma(store, "user_version") == LATEST
    assert store.schema_version() == LATEST


def _migrate_in_process(path: str, barrier: Any) -> None:
    store = SQLiteStore(path)
    barrier.wait()
    store.migrate()
    store.check_writable()
    store.close()


def test_concurrent_migrations_from_processes(db_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(6)
    workers = [context.Process(target=_migrate_in_process, args=(str(db_path), barrier))
               for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert [worker.exitcode for worker in workers] == [0] * 6
    assert _versions(db_path) == [version for version, _ in MIGRATIONS]


# --- failures become StoreUnavailable ---

WRITES: dict[str, Callable[[SQLiteStore, str], Any]] = {
    "insert": lambda s, lead_id: s.insert(received()),
    "claim": lambda s, lead_id: s.claim(lead_id, "w1", 60, T0),
    "claim_due": lambda s, lead_id: s.claim_due("w1", 10, 60, T0),
    "settle": lambda s, lead_id: s.settle(lead_id, "w1", Settlement("delivered", at=T0)),
    "release": lambda s, lead_id: s.release(lead_id, "w1"),
    "requeue": lambda s, lead_id: s.requeue(status="queued", now=T0),
    "remap": lambda s, lead_id: s.remap(lead_id, "dropped", None, {"reason": "x"}, "v2", T0),
    "purge": lambda s, lead_id: s.purge(T0 + 1, ("queued",)),
    "check_writable": lambda s, lead_id: s.check_writable(),
    "migrate": lambda s, lead_id: s.migrate(),
}


@pytest.mark.parametrize("operation", sorted(WRITES))
def test_read_only_database_makes_every_write_unavailable(store: SQLiteStore, db_path: Path,
                                                          operation: str) -> None:
    lead, _ = store.insert(received())
    store.claim(lead.id, "w1", 60, T0)
    read_only = ReadOnlyStore(db_path)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            WRITES[operation](read_only, lead.id)
        assert caught.value.status == 503 and caught.value.code == "store_unavailable"
        assert read_only.get(lead.id) == store.get(lead.id)  # reads still work
    finally:
        read_only.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file permissions")
def test_read_only_file_and_directory(store: SQLiteStore, db_path: Path) -> None:
    store.close()
    for path in (db_path, db_path.parent):
        path.chmod(0o555)
    try:
        with pytest.raises(StoreUnavailable):
            SQLiteStore(db_path).insert(received())
    finally:
        for path in (db_path.parent, db_path):
            path.chmod(0o755)


def test_full_database_is_unavailable_and_keeps_nothing(store: SQLiteStore,
                                                        db_path: Path) -> None:
    full = FullStore(db_path)
    with pytest.raises(StoreUnavailable, match="full"):
        full.insert(received(body=os.urandom(256 * 1024)))
    full.close()
    assert store.list() == []


def _mount_tiny_filesystem(mount_point: Path) -> bool:
    mount_point.mkdir()
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                          capture_output=True)
    return done.returncode == 0


def _fill(directory: Path) -> None:
    descriptor = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(descriptor, b"\0" * 4096):
            pass
    except OSError:
        pass  # no space left: the point
    finally:
        os.close(descriptor)


def test_full_disk_is_unavailable(tmp_path: Path) -> None:
    mount_point = tmp_path / "tiny"
    if not _mount_tiny_filesystem(mount_point):
        pytest.skip("cannot mount a tmpfs here")
    try:
        store = SQLiteStore(mount_point / "relay.db")
        store.migrate()
        store.insert(received())
        _fill(mount_point)
        with pytest.raises(StoreUnavailable):
            for _ in range(64):  # the WAL may absorb the first few pages
                store.insert(received(body=os.urandom(64 * 1024)))
        with pytest.raises(StoreUnavailable):
            store.check_writable()
        store.close()
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_lock_held_past_busy_timeout_is_unavailable(store: SQLiteStore, db_path: Path) -> None:
    impatient = SQLiteStore(db_path, busy_timeout_ms=50)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            impatient.insert(received())
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    lead, created = impatient.insert(received())
    assert created and store.get(lead.id) == lead
    impatient.close()


def test_unopenable_path_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    with pytest.raises(StoreUnavailable):
        SQLiteStore(tmp_path / "not-a-dir" / "relay.db").check_writable()


def test_unmigrated_database_is_not_writable(db_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        SQLiteStore(db_path).check_writable()


# --- threads and connections ---

def test_threads_use_their_own_connections(store: SQLiteStore) -> None:
    seen: list[int] = []

    def remember() -> None:
        seen.append(id(store._connection()))

    threads = [threading.Thread(target=remember) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen) | {id(store._connection())}) == 4


def test_a_torn_down_connection_does_not_affect_other_threads(store: SQLiteStore) -> None:
    ready, torn_down = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def other_thread() -> None:
        outcome["before"] = store.insert(received())[0].id
        ready.set()
        torn_down.wait()
        outcome["after"] = store.insert(received())[0].id

    thread = threading.Thread(target=other_thread)
    thread.start()
    ready.wait()
    store._connection().close()  # this thread's connection dies...
    lead, created = store.insert(received())  # ...and is replaced on next use
    torn_down.set()
    thread.join()
    assert created
    assert {outcome["before"], outcome["after"], lead.id} == {
        found.id for found in store.list()}


def test_close_then_reuse_reopens(store: SQLiteStore) -> None:
    lead, _ = store.insert(received())
    store.close()
    assert store.get(lead.id) == lead
