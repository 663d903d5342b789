"""The SQLite outbox.

Several gunicorn workers (processes) and their threads share one database
file. Each thread uses its own connection; every write is a ``BEGIN IMMEDIATE``
transaction, so writers queue on the file lock (up to ``busy_timeout_ms``)
instead of failing half-way, and a claim can never hand one lead to two owners.
WAL mode lets readers run alongside the single writer.

Whatever SQLite reports (disk full, read-only file, lock held past the timeout,
I/O error) leaves this module as :class:`relay.errors.StoreUnavailable`, so the
web layer answers 503 and the delivery worker keeps running.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from relay.errors import StoreUnavailable
from relay.store.filelock import WriteLock
from relay.store.group_commit import GroupCommitWriter
from relay.store.migrations import MIGRATIONS
from relay.store.sql import Params, Row, SqlStore, Tx

T = TypeVar("T")

SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced, so close() can reach every thread's."""


class SQLiteTx:
    """SqlStore's statements on one SQLite connection; ``:name`` is SQLite's own style."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def run(self, statement: str, params: Params | None = None) -> int:
        return self.conn.execute(statement, params or {}).rowcount

    def all(self, statement: str, params: Params | None = None) -> list[Row]:
        # fetchall: a RETURNING statement is complete only once every row is read.
        return self.conn.execute(statement, params or {}).fetchall()


class SQLiteStore(SqlStore):
    migrations = MIGRATIONS

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "FULL",
                 busy_timeout_ms: int = 5000, commit_delay_s: float = 0.0) -> None:
        synchronous = synchronous.upper()
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, "
                             f"not {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._local = threading.local()
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._connections_lock = threading.Lock()
        self._write_lock = WriteLock(self.path.with_name(self.path.name + ".write-lock"),
                                     self.busy_timeout_ms / 1000)
        # The hot writes (insert, claim, settle) share commits; see group_commit.
        self._writer = GroupCommitWriter(self._connect, _unavailable, self._write_lock.held,
                                         commit_delay_s=commit_delay_s)

    # --- connections and transactions ---

    def _connect(self) -> _Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=self.busy_timeout_ms / 1000,
                               isolation_level=None, check_same_thread=False,
                               factory=_Connection)
        conn.row_factory = sqlite3.Row
        try:
            self._configure(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        _enable_wal(conn, self.busy_timeout_ms / 1000)
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")

    def _connection(self) -> sqlite3.Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        # A connection inherited through fork() or closed under us is never reused.
        if conn is None or self._local.pid != os.getpid() or not _is_open(conn):
            conn = self._connect()
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._connections_lock:
                self._connections.add(conn)
        return conn

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction; commits on leaving, rolls back on error."""
        try:
            turn = self._write_lock.held()
            turn.__enter__()
        except OSError as exc:
            raise _unavailable(exc) from exc
        try:
            with self._transaction() as conn:
                yield conn
        finally:
            turn.__exit__(None, None, None)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
        except (sqlite3.Error, OSError) as exc:
            raise _unavailable(exc) from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            raise _unavailable(exc) from exc
        except BaseException:
            _rollback(conn)
            raise

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._connection()
        except (sqlite3.Error, OSError) as exc:
            raise _unavailable(exc) from exc

    # --- what SqlStore runs its work through ---

    def _read(self, work: Callable[[Tx], T]) -> T:
        with self._reading() as conn:
            return work(SQLiteTx(conn))

    def _write(self, work: Callable[[Tx], T], *, hot: bool = False,
               one_statement: bool = False) -> T:
        if hot:
            return self._writer.run(lambda conn: work(SQLiteTx(conn)))
        with self._writing() as conn:
            return work(SQLiteTx(conn))

    def _after_migrating(self, tx: Tx, version: int) -> None:
        # Lets sqlite3 and other tools tell the schema's age without reading our tables.
        tx.run(f"PRAGMA user_version = {int(version)}")

    def close(self) -> None:
        """Close every connection, after folding the write-ahead log back into the file.

        Without the checkpoint, recent leads live only in ``relay.db-wal``: a copy of
        ``relay.db`` alone taken after a clean stop would miss them. Another process still
        reading keeps part of the log; the last one to close folds in the rest.
        """
        with self._connections_lock:
            connections = list(self._connections)
            self._connections = weakref.WeakSet()
        with contextlib.suppress(sqlite3.Error, OSError):
            checkpointer = connections[0] if connections else self._connect()
            checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            connections.append(checkpointer)
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()


# --- helpers (module level: they hold no state) ---

def _enable_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    # Switching a new file to WAL needs an exclusive lock, and SQLite answers "locked" at once
    # rather than through the busy handler when processes race to open the file first.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _unavailable(exc: BaseException) -> StoreUnavailable:
    reason = str(exc) or type(exc).__name__
    return StoreUnavailable(f"the outbox cannot commit: {reason}", reason=reason)


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # the original error is the one worth reporting


def _is_open(conn: sqlite3.Connection) -> bool:
    try:
        _ = conn.total_changes  # raises once the connection is closed
    except sqlite3.ProgrammingError:
        return False
    return True
