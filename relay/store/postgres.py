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

import functools
import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from relay.errors import StoreUnavailable
from relay.store.pg_migrations import MIGRATIONS
from relay.store.sql import Params, Row, SqlStore, Tx

T = TypeVar("T")

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
    def parse(cls, url: str) -> PostgresLocation:
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


class PooledConnection(psycopg.Connection[Any]):
    """A connection that remembers when it was last given back to the pool."""

    returned_at: float = 0.0


# The pool hands these callbacks the PooledConnections it made (connection_class).
def _mark_returned(conn: psycopg.Connection[Any]) -> None:
    cast(PooledConnection, conn).returned_at = time.monotonic()


def _ping_if_idle(conn: psycopg.Connection[Any]) -> None:
    """The pool's check: a connection idle for a while may have been cut (a database restart)."""
    if time.monotonic() - cast(PooledConnection, conn).returned_at >= PING_IF_IDLE_S:
        ConnectionPool.check_connection(conn)


class PostgresTx:
    """SqlStore's statements on one psycopg connection, ``:name`` spelled ``%(name)s``."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def run(self, statement: str, params: Params | None = None) -> int:
        return self.conn.execute(*_pyformat(statement, params)).rowcount

    def all(self, statement: str, params: Params | None = None) -> list[Row]:
        return self.conn.execute(*_pyformat(statement, params)).fetchall()


class PostgresStore(SqlStore):
    migrations = MIGRATIONS
    time_type = "DOUBLE PRECISION"  # REAL is single precision: it would round epoch seconds
    skip_locked = " FOR UPDATE SKIP LOCKED"
    lock_rows = " FOR UPDATE"
    received_slot = "FLOOR(received_at / 900)"  # a CAST to integer would round, not truncate
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

    # --- what SqlStore runs its work through ---

    def _read(self, work: Callable[[Tx], T]) -> T:
        with self._connection() as conn:
            return work(PostgresTx(conn))

    def _write(self, work: Callable[[Tx], T], *, hot: bool = False,
               one_statement: bool = False) -> T:
        with self._connection() as conn:
            if one_statement:  # autocommit: one round trip instead of three
                return work(PostgresTx(conn))
            with conn.transaction():
                return work(PostgresTx(conn))

    def _before_migrating(self, tx: Tx) -> None:
        schema = self.location.schema
        # Instances starting together queue here, so each migration is applied once.
        tx.all("SELECT pg_advisory_xact_lock(hashtext(:key))",
               {"key": f"trackdrive-relay migrate {schema or 'public'}"})
        if schema:  # SCHEMA_NAME allows no quote, so quoting it is enough
            tx.run(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            tx.run(f'SET LOCAL search_path TO "{schema}"')

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


_NAMED = re.compile(r"(?<![:\w]):(\w+)")


@functools.lru_cache(maxsize=512)
def _pyformat_statement(statement: str) -> str:
    return _NAMED.sub(r"%(\1)s", statement.replace("%", "%%"))


def _pyformat(statement: str, params: Params | None) -> tuple[Any, Params | None]:
    """(query, params) for psycopg; a statement without params is sent as written."""
    if params is None:
        return statement, None
    return _pyformat_statement(statement), params
