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

import os
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from relay.errors import StoreUnavailable
from relay.store import new_lead_id
from relay.store.base import (Count, Lead, PendingStats, Received, Settlement, Store)
from relay.store.filelock import WriteLock
from relay.store.group_commit import GroupCommitWriter
from relay.store.rows import (LEAD_COLUMNS, LEAD_FIELDS, REMAP_STATUSES, check_settlement, dumps,
                              lead_from_row, new_lead_row, truncate)
from relay.store.migrations import MIGRATIONS

SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")

# A lead is deliverable when it waits for delivery, is due, and nobody holds a live lease.
CLAIMABLE = ("status IN ('queued', 'retry')"
             " AND (next_attempt_at IS NULL OR next_attempt_at <= :now)"
             " AND (lease_until IS NULL OR lease_until <= :now)")
NOT_LEASED = "(lease_until IS NULL OR lease_until <= :now)"

INSERT_LEAD = f"INSERT INTO leads ({LEAD_COLUMNS}) VALUES ({', '.join('?' * len(LEAD_FIELDS))})"


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced, so close() can reach every thread's."""


class SQLiteStore(Store):
    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "FULL",
                 busy_timeout_ms: int = 5000) -> None:
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
        self._writer = GroupCommitWriter(self._connect, _unavailable, self._write_lock.held)

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
    def _write(self) -> Iterator[sqlite3.Connection]:
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
    def _read(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._connection()
        except (sqlite3.Error, OSError) as exc:
            raise _unavailable(exc) from exc

    # --- schema ---

    def migrate(self) -> None:
        with self._write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                         " version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
            applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, statements in MIGRATIONS:
                if version in applied:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                             (version, time.time()))
            conn.execute(f"PRAGMA user_version = {MIGRATIONS[-1][0]}")

    def schema_version(self) -> int:
        with self._read() as conn:
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    # --- receiving ---

    def insert(self, received: Received) -> tuple[Lead, bool]:
        deduping = bool(received.dedupe_key) and received.dedupe_window_s > 0
        lead_id = new_lead_id()
        row = new_lead_row(lead_id, received)

        def write(conn: sqlite3.Connection) -> Lead | None:
            """The earlier lead for a repeat; None once the new row is written."""
            if deduping:
                earlier = _dedupe_hit(conn, received)
                if earlier is not None:
                    return earlier
            conn.execute(INSERT_LEAD, tuple(row.values()))
            if deduping:
                conn.execute("INSERT INTO dedupe_keys (source, dedupe_key, lead_id, expires_at)"
                             " VALUES (?, ?, ?, ?) ON CONFLICT (source, dedupe_key) DO UPDATE"
                             " SET lead_id = excluded.lead_id, expires_at = excluded.expires_at",
                             (received.source, received.dedupe_key, lead_id,
                              received.received_at + received.dedupe_window_s))
            return None

        earlier = self._writer.run(write)
        if earlier is not None:
            return earlier, False
        # Built from what was written, not read back: the writer thread, which every
        # request shares, does only the SQL.
        return lead_from_row(row), True

    # --- delivering ---

    def claim(self, lead_id: str, owner: str, lease_s: float, now: float) -> Lead | None:
        def write(conn: sqlite3.Connection) -> Lead | None:
            taken = conn.execute(
                "UPDATE leads SET lease_owner = :owner, lease_until = :until, updated_at = :now"
                f" WHERE id = :id AND {CLAIMABLE}",
                {"owner": owner, "until": now + lease_s, "now": now, "id": lead_id}).rowcount
            return _fetch_lead(conn, lead_id) if taken else None

        return self._writer.run(write)

    def claim_due(self, owner: str, limit: int, lease_s: float, now: float) -> list[Lead]:
        if limit <= 0:
            return []
        with self._write() as conn:
            ids = [row[0] for row in conn.execute(
                f"SELECT id FROM leads WHERE {CLAIMABLE} ORDER BY next_attempt_at, id LIMIT :limit",
                {"now": now, "limit": limit})]
            if not ids:
                return []
            conn.execute(
                "UPDATE leads SET lease_owner = ?, lease_until = ?, updated_at = ?"
                f" WHERE id IN ({_placeholders(len(ids))})", (owner, now + lease_s, now, *ids))
            rows = conn.execute(f"SELECT {LEAD_COLUMNS} FROM leads WHERE id IN"
                                f" ({_placeholders(len(ids))}) ORDER BY next_attempt_at, id",
                                ids).fetchall()
        return [lead_from_row(row) for row in rows]

    def settle(self, lead_id: str, owner: str, settlement: Settlement) -> bool:
        check_settlement(settlement)
        response_body = truncate(settlement.response_body)

        def write(conn: sqlite3.Connection) -> bool:
            held = conn.execute("SELECT 1 FROM leads WHERE id = ? AND lease_owner = ?",
                                (lead_id, owner)).fetchone()
            if held is None:
                return False
            conn.execute(
                "UPDATE leads SET status = :status, attempts = attempts + 1,"
                " next_attempt_at = :next, lease_owner = NULL, lease_until = NULL,"
                " response_status = :response_status, response_body = :response_body,"
                " delivered_at = :delivered_at, updated_at = :at WHERE id = :id",
                {"status": settlement.result, "id": lead_id, "at": settlement.at,
                 "next": settlement.next_attempt_at if settlement.result == "retry" else None,
                 "response_status": settlement.response_status, "response_body": response_body,
                 "delivered_at": settlement.at if settlement.result == "delivered" else None})
            conn.execute(
                "INSERT INTO attempts (lead_id, attempted_at, result, response_status,"
                " response_body, reason, latency_s, next_attempt_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (lead_id, settlement.at, settlement.result, settlement.response_status,
                 response_body, settlement.reason, settlement.latency_s,
                 settlement.next_attempt_at if settlement.result == "retry" else None))
            return True

        return self._writer.run(write)

    def release(self, lead_id: str, owner: str) -> bool:
        now = time.time()
        return self._writer.run(lambda conn: conn.execute(
            "UPDATE leads SET lease_owner = NULL, lease_until = NULL, updated_at = ?"
            " WHERE id = ? AND lease_owner = ?", (now, lead_id, owner)).rowcount == 1)

    def defer(self, lead_id: str, owner: str, next_attempt_at: float, now: float) -> bool:
        return self._writer.run(lambda conn: conn.execute(
            "UPDATE leads SET next_attempt_at = ?, lease_owner = NULL, lease_until = NULL,"
            " updated_at = ? WHERE id = ? AND lease_owner = ? AND status IN ('queued', 'retry')",
            (next_attempt_at, now, lead_id, owner)).rowcount == 1)

    # --- reading ---

    def get(self, lead_id: str) -> Lead | None:
        with self._read() as conn:
            return _fetch_lead(conn, lead_id)

    def list(self, status: str | None = None, source: str | None = None,
             limit: int = 100) -> list[Lead]:
        where, params = _filters(status=status, source=source)
        with self._read() as conn:
            rows = conn.execute(f"SELECT {LEAD_COLUMNS} FROM leads {where}"
                                " ORDER BY received_at DESC, id DESC LIMIT ?",
                                (*params, limit)).fetchall()
        return [lead_from_row(row) for row in rows]

    def attempts(self, lead_id: str) -> list[Settlement]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT result, attempted_at, response_status, response_body, next_attempt_at,"
                " reason, latency_s FROM attempts WHERE lead_id = ? ORDER BY seq",
                (lead_id,)).fetchall()
        return [Settlement(result=row["result"], at=row["attempted_at"],
                           response_status=row["response_status"],
                           response_body=row["response_body"],
                           next_attempt_at=row["next_attempt_at"], reason=row["reason"] or "",
                           latency_s=row["latency_s"]) for row in rows]

    def counts(self, since: float | None = None, until: float | None = None) -> list[Count]:
        where, params = _filters(since=since, until=until)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT received_day, source, status, COUNT(*) FROM leads {where}"
                " GROUP BY received_day, source, status ORDER BY received_day, source, status",
                params).fetchall()
        return [Count(day=row[0], source=row[1], status=row[2], count=row[3]) for row in rows]

    def pending_stats(self, now: float) -> PendingStats:
        with self._read() as conn:
            pending, oldest = conn.execute(
                "SELECT COUNT(*), MIN(received_at) FROM leads"
                " WHERE status IN ('queued', 'retry')").fetchone()
            dead = conn.execute("SELECT COUNT(*) FROM leads WHERE status = 'dead'").fetchone()[0]
        return PendingStats(pending=pending, oldest_received_at=oldest, dead=dead)

    # --- operating ---

    def requeue(self, lead_ids: Iterable[str] | None = None, source: str | None = None,
                status: str = "dead", now: float = 0.0) -> int:
        ids = None if lead_ids is None else list(lead_ids)
        if ids == []:
            return 0
        where, params = _filters(status=status, source=source, ids=ids)
        # Only leads with a call can be delivered; never steal a live lease.
        where += " AND call_json IS NOT NULL AND (lease_until IS NULL OR lease_until <= ?)"
        with self._write() as conn:
            return conn.execute(
                "UPDATE leads SET status = 'queued', next_attempt_at = ?, attempts = 0,"
                f" lease_owner = NULL, lease_until = NULL, updated_at = ? {where}",
                (now, now, *params, now)).rowcount

    def remap(self, lead_id: str, status: str, call: dict[str, Any] | None,
              error: dict[str, Any] | None, mapping_version: str, now: float) -> bool:
        if status not in REMAP_STATUSES:
            raise ValueError(f"remap status must be one of {', '.join(REMAP_STATUSES)}")
        if status == "queued" and call is None:
            raise ValueError("a queued lead needs a call")
        with self._write() as conn:
            return conn.execute(
                "UPDATE leads SET status = :status, call_json = :call, error_json = :error,"
                " mapping_version = :version, next_attempt_at = :next, attempts = 0,"
                " lease_owner = NULL, lease_until = NULL, delivered_at = NULL, updated_at = :now"
                f" WHERE id = :id AND {NOT_LEASED}",
                {"status": status, "call": dumps(call), "error": dumps(error),
                 "version": mapping_version, "next": now if status == "queued" else None,
                 "now": now, "id": lead_id}).rowcount == 1

    def purge(self, older_than: float, statuses: tuple[str, ...] = ("delivered",)) -> int:
        if not statuses:
            return 0
        doomed = (f"SELECT id FROM leads WHERE status IN ({_placeholders(len(statuses))})"
                  " AND received_at < ?")
        params = (*statuses, older_than)
        with self._write() as conn:
            conn.execute(f"DELETE FROM attempts WHERE lead_id IN ({doomed})", params)
            conn.execute(f"DELETE FROM dedupe_keys WHERE lead_id IN ({doomed})", params)
            conn.execute("DELETE FROM dedupe_keys WHERE expires_at < ?", (older_than,))
            return conn.execute(f"DELETE FROM leads WHERE id IN ({doomed})", params).rowcount

    def check_writable(self) -> None:
        with self._write() as conn:
            conn.execute("INSERT INTO heartbeat (id, beat_at) VALUES (1, ?)"
                         " ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at",
                         (time.time(),))

    def close(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
            self._connections = weakref.WeakSet()
        for conn in connections:
            try:
                conn.close()
            except sqlite3.Error:
                pass
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
        conn.total_changes
    except sqlite3.ProgrammingError:
        return False
    return True


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


def _filters(*, status: str | None = None, source: str | None = None,
             ids: Sequence[str] | None = None, since: float | None = None,
             until: float | None = None) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause (possibly empty) and its parameters, positional."""
    clauses: list[str] = []
    params: list[Any] = []
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    if source is not None:
        clauses.append("source = ?")
        params.append(source)
    if ids is not None:
        clauses.append(f"id IN ({_placeholders(len(ids))})")
        params.extend(ids)
    if since is not None:
        clauses.append("received_at >= ?")
        params.append(since)
    if until is not None:
        clauses.append("received_at < ?")
        params.append(until)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else "WHERE 1 = 1"
    return where, tuple(params)


def _dedupe_hit(conn: sqlite3.Connection, received: Received) -> Lead | None:
    row = conn.execute(
        f"SELECT {', '.join('l.' + name for name in LEAD_FIELDS)}"
        " FROM dedupe_keys d JOIN leads l ON l.id = d.lead_id"
        " WHERE d.source = ? AND d.dedupe_key = ? AND d.expires_at > ?",
        (received.source, received.dedupe_key, received.received_at)).fetchone()
    return None if row is None else lead_from_row(row)


def _fetch_lead(conn: sqlite3.Connection, lead_id: str) -> Lead | None:
    row = conn.execute(f"SELECT {LEAD_COLUMNS} FROM leads WHERE id = ?", (lead_id,)).fetchone()
    return None if row is None else lead_from_row(row)

