"""The PostgreSQL outbox: several relay instances (hosts) share one database.

* Claims use ``FOR UPDATE SKIP LOCKED`` plus a lease, so instances split the due
  leads between them without waiting on each other, and a dead instance's leads
  are taken over once its lease expires.
* Dedupe keys live under a unique index and are written with ``INSERT ... ON
  CONFLICT``: two instances receiving the same vendor retry at once agree on one lead.
* ``migrate`` holds a transaction-scoped advisory lock, so instances starting
  together apply each migration once.
* Connections come from a ``psycopg_pool.ConnectionPool`` that pings one idle
  for a second or more before handing it out and reconnects in the background, so the store recovers
  from a database restart by itself. Connecting and waiting for a pooled
  connection are bounded (2 s by default): while the database is away every call
  fails fast with :class:`relay.errors.StoreUnavailable` (the web layer answers 503).

URL: ``postgresql://user@host:5432/dbname?schema=relay&pool_size=10``. ``schema``
(created by ``migrate``) puts the tables in their own schema instead of ``public``;
``pool_size`` caps connections per process; every other query parameter
(``sslmode``, ``connect_timeout``, ...) goes to libpq unchanged.
"""
from __future__ import annotations

import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from relay.errors import StoreUnavailable
from relay.store import new_lead_id
from relay.store.base import Count, Lead, PendingStats, Received, Settlement, Store
from relay.store.pg_migrations import MIGRATIONS
from relay.store.rows import (LEAD_COLUMNS, LEAD_FIELDS, REMAP_STATUSES, check_settlement, dumps,
                              lead_from_row, new_lead_row, truncate)

DEFAULT_POOL_SIZE = 10
DEFAULT_CONNECT_TIMEOUT_S = 2.0
# The pool's background reconnection backs off exponentially; giving up early lets
# the next request start a fresh attempt, so recovery after an outage takes seconds.
RECONNECT_TIMEOUT_S = 5.0
# A request never waits on a dead network for longer than this (libpq tcp_user_timeout).
TCP_USER_TIMEOUT_MS = 10_000
# A connection used this recently is handed out again without a ping: the ping is a
# round trip (~20% of a commit), and a connection that just worked is very likely alive.
PING_IF_IDLE_S = 1.0
SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
OWN_PARAMETERS = ("schema", "pool_size")

CLAIMABLE = ("status IN ('queued', 'retry')"
             " AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s)"
             " AND (lease_until IS NULL OR lease_until <= %(now)s)")
NOT_LEASED = "(lease_until IS NULL OR lease_until <= %(now)s)"

LEAD_VALUES = ", ".join(f"%({name})s" for name in LEAD_FIELDS)

# Pools inherited through fork() must never be closed or garbage-collected in the
# child: closing a connection sends a terminate message on the socket the parent
# still uses. Holding them here keeps them alive until the process exits.
_INHERITED_POOLS: list[ConnectionPool] = []


@dataclass(frozen=True)
class PostgresLocation:
    """A database URL split into what libpq reads and what the relay reads."""

    conninfo: str
    schema: str | None
    pool_size: int

    @classmethod
    def parse(cls, url: str) -> "PostgresLocation":
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("postgres", "postgresql"):
            raise ValueError(f"not a PostgreSQL URL: scheme {parts.scheme!r}")
        params = parse_qsl(parts.query, keep_blank_values=True)
        own = {key: value for key, value in params if key in OWN_PARAMETERS}
        passed = [(key, value) for key, value in params if key not in OWN_PARAMETERS]
        schema = own.get("schema") or None
        if schema is not None and not SCHEMA_NAME.match(schema):
            raise ValueError(f"invalid schema {schema!r} in the database URL: use letters, "
                             "digits and underscores, starting with a letter or underscore")
        pool_size = _positive_int(own.get("pool_size"), DEFAULT_POOL_SIZE, "pool_size")
        conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(passed), ""))
        return cls(conninfo=conninfo, schema=schema, pool_size=pool_size)

    def connect_kwargs(self, connect_timeout_s: float) -> dict[str, Any]:
        """Connection settings the URL may override (a URL's connect_timeout wins)."""
        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row,
                                  "application_name": "trackdrive-relay",
                                  "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
                                  "keepalives": 1, "keepalives_idle": 30}
        if "connect_timeout" not in psycopg.conninfo.conninfo_to_dict(self.conninfo):
            kwargs["connect_timeout"] = max(1, round(connect_timeout_s))
        if self.schema:
            kwargs["options"] = f"-csearch_path={self.schema}"
        return kwargs


class PooledConnection(psycopg.Connection):
    """A connection that remembers when it was last given back to the pool."""

    returned_at: float = 0.0


def _mark_returned(conn: PooledConnection) -> None:
    conn.returned_at = time.monotonic()


def _ping_if_idle(conn: PooledConnection) -> None:
    """The pool's check: a connection idle for a while may have been cut (a database restart)."""
    if time.monotonic() - conn.returned_at >= PING_IF_IDLE_S:
        ConnectionPool.check_connection(conn)


class PostgresStore(Store):
    def __init__(self, url: str, *, connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S) -> None:
        self.location = PostgresLocation.parse(url)
        self.connect_timeout_s = connect_timeout_s
        self._kwargs = self.location.connect_kwargs(connect_timeout_s)
        self._pool_lock = threading.Lock()
        self._pool_pid = 0
        self._pool_instance: ConnectionPool | None = None

    # --- connections and transactions ---

    def _pool(self) -> ConnectionPool:
        with self._pool_lock:
            if self._pool_instance is not None and self._pool_pid != os.getpid():
                _INHERITED_POOLS.append(self._pool_instance)  # a fork: start afresh
                self._pool_instance = None
            if self._pool_instance is None:
                self._pool_instance = self._open_pool()
                self._pool_pid = os.getpid()
            return self._pool_instance

    def _open_pool(self) -> ConnectionPool:
        pool: ConnectionPool = ConnectionPool(
            self.location.conninfo, connection_class=PooledConnection, kwargs=self._kwargs,
            min_size=1, max_size=self.location.pool_size, open=False,
            check=_ping_if_idle, reset=_mark_returned, timeout=self.connect_timeout_s,
            reconnect_timeout=RECONNECT_TIMEOUT_S, name="relay-outbox")
        pool.open(wait=False)
        return pool

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection in autocommit mode: each statement commits on its own."""
        try:
            with self._pool().connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection]:
        """One transaction; commits on leaving, rolls back on any error."""
        with self._connection() as conn:
            with conn.transaction():
                yield conn

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        reason = _describe(exc)
        if isinstance(exc, PoolTimeout):
            # The pool only says it waited; a direct attempt says why (refused, auth, ...).
            reason = f"{reason} ({self._probe() or 'the database is overloaded'})"
        return StoreUnavailable(f"the outbox cannot commit: {reason}", reason=reason)

    def _probe(self) -> str | None:
        """Why a fresh connection fails now, or None when it succeeds."""
        try:
            with psycopg.connect(self.location.conninfo, **self._kwargs):
                return None
        except psycopg.Error as exc:
            return _describe(exc)

    # --- schema ---

    def migrate(self) -> None:
        schema = self.location.schema
        with self._write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                         (f"trackdrive-relay migrate {schema or 'public'}",))
            if schema:
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
                conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                         " version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")
            applied = {row["version"] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, statements in MIGRATIONS:
                if version in applied:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (%s, %s)",
                             (version, time.time()))

    def schema_version(self) -> int:
        with self._connection() as conn:
            row = conn.execute("SELECT MAX(version) AS version FROM schema_migrations").fetchone()
        return int(row["version"] or 0)

    # --- receiving ---

    def insert(self, received: Received) -> tuple[Lead, bool]:
        deduping = bool(received.dedupe_key) and received.dedupe_window_s > 0
        lead_id = new_lead_id()
        with self._write() as conn:
            if deduping and not _take_dedupe_key(conn, received, lead_id):
                earlier = _dedupe_hit(conn, received)
                if earlier is not None:
                    return earlier, False
                _point_dedupe_key(conn, received, lead_id)  # its lead was purged
            row = conn.execute(f"INSERT INTO leads ({LEAD_COLUMNS}) VALUES ({LEAD_VALUES})"
                               f" RETURNING {LEAD_COLUMNS}", new_lead_row(lead_id, received)).fetchone()
        return lead_from_row(row), True

    # --- delivering ---

    def claim(self, lead_id: str, owner: str, lease_s: float, now: float) -> Lead | None:
        with self._write() as conn:
            row = conn.execute(
                "UPDATE leads SET lease_owner = %(owner)s, lease_until = %(until)s,"
                f" updated_at = %(now)s WHERE id = %(id)s AND {CLAIMABLE} RETURNING {LEAD_COLUMNS}",
                {"owner": owner, "until": now + lease_s, "now": now, "id": lead_id}).fetchone()
        return None if row is None else lead_from_row(row)

    def claim_due(self, owner: str, limit: int, lease_s: float, now: float) -> list[Lead]:
        if limit <= 0:
            return []
        with self._write() as conn:
            # SKIP LOCKED: rows another instance is claiming right now are passed over,
            # not waited for; READ COMMITTED re-checks CLAIMABLE on rows it does lock.
            rows = conn.execute(
                "UPDATE leads SET lease_owner = %(owner)s, lease_until = %(until)s,"
                " updated_at = %(now)s WHERE id IN ("
                f"  SELECT id FROM leads WHERE {CLAIMABLE}"
                "   ORDER BY next_attempt_at NULLS FIRST, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
                f" RETURNING {LEAD_COLUMNS}",
                {"owner": owner, "until": now + lease_s, "now": now, "limit": limit}).fetchall()
        leads = [lead_from_row(row) for row in rows]
        return sorted(leads, key=lambda lead: (lead.next_attempt_at is not None,
                                               lead.next_attempt_at or 0.0, lead.id))

    def settle(self, lead_id: str, owner: str, settlement: Settlement) -> bool:
        check_settlement(settlement)
        response_body = truncate(settlement.response_body)
        retry_at = settlement.next_attempt_at if settlement.result == "retry" else None
        with self._write() as conn:
            moved = conn.execute(
                "UPDATE leads SET status = %(status)s, attempts = attempts + 1,"
                " next_attempt_at = %(next)s, lease_owner = NULL, lease_until = NULL,"
                " response_status = %(response_status)s, response_body = %(response_body)s,"
                " delivered_at = %(delivered_at)s, updated_at = %(at)s"
                " WHERE id = %(id)s AND lease_owner = %(owner)s",
                {"status": settlement.result, "id": lead_id, "owner": owner, "at": settlement.at,
                 "next": retry_at, "response_status": settlement.response_status,
                 "response_body": response_body,
                 "delivered_at": settlement.at if settlement.result == "delivered" else None}).rowcount
            if moved != 1:
                return False
            conn.execute(
                "INSERT INTO attempts (lead_id, attempted_at, result, response_status,"
                " response_body, reason, latency_s, next_attempt_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (lead_id, settlement.at, settlement.result, settlement.response_status,
                 response_body, settlement.reason, settlement.latency_s, retry_at))
        return True

    def release(self, lead_id: str, owner: str) -> bool:
        with self._connection() as conn:
            return conn.execute(
                "UPDATE leads SET lease_owner = NULL, lease_until = NULL, updated_at = %s"
                " WHERE id = %s AND lease_owner = %s", (time.time(), lead_id, owner)).rowcount == 1

    def defer(self, lead_id: str, owner: str, next_attempt_at: float, now: float) -> bool:
        with self._connection() as conn:
            return conn.execute(
                "UPDATE leads SET next_attempt_at = %s, lease_owner = NULL, lease_until = NULL,"
                " updated_at = %s WHERE id = %s AND lease_owner = %s"
                " AND status IN ('queued', 'retry')",
                (next_attempt_at, now, lead_id, owner)).rowcount == 1

    # --- reading ---

    def get(self, lead_id: str) -> Lead | None:
        with self._connection() as conn:
            return _fetch_lead(conn, lead_id)

    def list(self, status: str | None = None, source: str | None = None,
             limit: int = 100) -> list[Lead]:
        where, params = _filters(status=status, source=source)
        with self._connection() as conn:
            rows = conn.execute(f"SELECT {LEAD_COLUMNS} FROM leads {where}"
                                " ORDER BY received_at DESC, id DESC LIMIT %(limit)s",
                                {**params, "limit": limit}).fetchall()
        return [lead_from_row(row) for row in rows]

    def attempts(self, lead_id: str) -> list[Settlement]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT result, attempted_at, response_status, response_body, next_attempt_at,"
                " reason, latency_s FROM attempts WHERE lead_id = %s ORDER BY seq",
                (lead_id,)).fetchall()
        return [Settlement(result=row["result"], at=row["attempted_at"],
                           response_status=row["response_status"],
                           response_body=row["response_body"],
                           next_attempt_at=row["next_attempt_at"], reason=row["reason"] or "",
                           latency_s=row["latency_s"]) for row in rows]

    def counts(self, since: float | None = None, until: float | None = None) -> list[Count]:
        where, params = _filters(since=since, until=until)
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT received_day, source, status, COUNT(*) AS n FROM leads {where}"
                " GROUP BY received_day, source, status ORDER BY received_day, source, status",
                params).fetchall()
        return [Count(day=row["received_day"], source=row["source"], status=row["status"],
                      count=row["n"]) for row in rows]

    def pending_stats(self, now: float) -> PendingStats:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT COUNT(*) FILTER (WHERE status IN ('queued', 'retry')) AS pending,"
                " MIN(received_at) FILTER (WHERE status IN ('queued', 'retry')) AS oldest,"
                " COUNT(*) FILTER (WHERE status = 'dead') AS dead"
                " FROM leads WHERE status IN ('queued', 'retry', 'dead')").fetchone()
        return PendingStats(pending=row["pending"], oldest_received_at=row["oldest"],
                            dead=row["dead"])

    # --- operating ---

    def requeue(self, lead_ids: Iterable[str] | None = None, source: str | None = None,
                status: str = "dead", now: float = 0.0) -> int:
        ids = None if lead_ids is None else list(lead_ids)
        if ids == []:
            return 0
        where, params = _filters(status=status, source=source, ids=ids)
        # Only leads with a call can be delivered; never steal a live lease.
        where += f" AND call_json IS NOT NULL AND {NOT_LEASED}"
        with self._connection() as conn:
            return conn.execute(
                "UPDATE leads SET status = 'queued', next_attempt_at = %(now)s, attempts = 0,"
                f" lease_owner = NULL, lease_until = NULL, updated_at = %(now)s {where}",
                {**params, "now": now}).rowcount

    def remap(self, lead_id: str, status: str, call: dict[str, Any] | None,
              error: dict[str, Any] | None, mapping_version: str, now: float) -> bool:
        if status not in REMAP_STATUSES:
            raise ValueError(f"remap status must be one of {', '.join(REMAP_STATUSES)}")
        if status == "queued" and call is None:
            raise ValueError("a queued lead needs a call")
        with self._connection() as conn:
            return conn.execute(
                "UPDATE leads SET status = %(status)s, call_json = %(call)s, error_json = %(error)s,"
                " mapping_version = %(version)s, next_attempt_at = %(next)s, attempts = 0,"
                " lease_owner = NULL, lease_until = NULL, delivered_at = NULL, updated_at = %(now)s"
                f" WHERE id = %(id)s AND {NOT_LEASED}",
                {"status": status, "call": dumps(call), "error": dumps(error),
                 "version": mapping_version, "next": now if status == "queued" else None,
                 "now": now, "id": lead_id}).rowcount == 1

    def purge(self, older_than: float, statuses: tuple[str, ...] = ("delivered",)) -> int:
        if not statuses:
            return 0
        params = {"statuses": list(statuses), "older_than": older_than}
        with self._write() as conn:
            purged = conn.execute(
                "WITH doomed AS (DELETE FROM leads WHERE status = ANY(%(statuses)s)"
                "   AND received_at < %(older_than)s RETURNING id),"
                " gone_attempts AS (DELETE FROM attempts WHERE lead_id IN (SELECT id FROM doomed)),"
                " gone_keys AS (DELETE FROM dedupe_keys WHERE lead_id IN (SELECT id FROM doomed))"
                " SELECT COUNT(*) AS n FROM doomed", params).fetchone()["n"]
            conn.execute("DELETE FROM dedupe_keys WHERE expires_at < %(older_than)s", params)
        return int(purged)

    def check_writable(self) -> None:
        with self._connection() as conn:
            conn.execute("INSERT INTO heartbeat (id, beat_at) VALUES (1, %s)"
                         " ON CONFLICT (id) DO UPDATE SET beat_at = EXCLUDED.beat_at",
                         (time.time(),))

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool_instance = self._pool_instance, None
            mine = self._pool_pid == os.getpid()
        if pool is None:
            return
        if mine:
            pool.close(timeout=5.0)
        else:
            _INHERITED_POOLS.append(pool)


# --- helpers (module level: they hold no state) ---

def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())  # libpq messages span lines
    return text or type(exc).__name__


def _positive_int(text: str | None, default: int, name: str) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name} in the database URL must be a positive integer, not {text!r}")
    return value


def _take_dedupe_key(conn: psycopg.Connection, received: Received, lead_id: str) -> bool:
    """Point the key at ``lead_id`` unless a live earlier lead holds it; True when taken.

    A concurrent insert of the same key waits on the unique index until the first
    transaction ends, then sees its committed row and takes the conflict branch.
    """
    taken = conn.execute(
        "INSERT INTO dedupe_keys (source, dedupe_key, lead_id, expires_at)"
        " VALUES (%(source)s, %(key)s, %(id)s, %(expires)s)"
        " ON CONFLICT (source, dedupe_key) DO UPDATE"
        " SET lead_id = EXCLUDED.lead_id, expires_at = EXCLUDED.expires_at"
        " WHERE dedupe_keys.expires_at <= %(at)s RETURNING lead_id",
        {"source": received.source, "key": received.dedupe_key, "id": lead_id,
         "expires": received.received_at + received.dedupe_window_s,
         "at": received.received_at}).fetchone()
    return taken is not None


def _point_dedupe_key(conn: psycopg.Connection, received: Received, lead_id: str) -> None:
    conn.execute("UPDATE dedupe_keys SET lead_id = %s, expires_at = %s"
                 " WHERE source = %s AND dedupe_key = %s",
                 (lead_id, received.received_at + received.dedupe_window_s,
                  received.source, received.dedupe_key))


def _dedupe_hit(conn: psycopg.Connection, received: Received) -> Lead | None:
    row = conn.execute(
        f"SELECT {', '.join('l.' + name for name in LEAD_FIELDS)}"
        " FROM dedupe_keys d JOIN leads l ON l.id = d.lead_id"
        " WHERE d.source = %s AND d.dedupe_key = %s AND d.expires_at > %s",
        (received.source, received.dedupe_key, received.received_at)).fetchone()
    return None if row is None else lead_from_row(row)


def _fetch_lead(conn: psycopg.Connection, lead_id: str) -> Lead | None:
    row = conn.execute(f"SELECT {LEAD_COLUMNS} FROM leads WHERE id = %s", (lead_id,)).fetchone()
    return None if row is None else lead_from_row(row)


def _filters(*, status: str | None = None, source: str | None = None,
             ids: Sequence[str] | None = None, since: float | None = None,
             until: float | None = None) -> tuple[str, dict[str, Any]]:
    """A WHERE clause (never empty, so callers may append ``AND ...``) and its named parameters."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if status is not None:
        clauses.append("status = %(status)s")
        params["status"] = status
    if source is not None:
        clauses.append("source = %(source)s")
        params["source"] = source
    if ids is not None:
        clauses.append("id = ANY(%(ids)s)")
        params["ids"] = list(ids)
    if since is not None:
        clauses.append("received_at >= %(since)s")
        params["since"] = since
    if until is not None:
        clauses.append("received_at < %(until)s")
        params["until"] = until
    return "WHERE " + (" AND ".join(clauses) if clauses else "TRUE"), params

