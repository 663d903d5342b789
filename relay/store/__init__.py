"""The outbox: durable storage for every lead between receipt and delivery.

``open_store(url)`` picks the backend from the database URL (``sqlite:///...`` or
``postgresql://...``); every backend implements :class:`relay.store.base.Store`.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit

from relay.store.base import (
    ACCEPTED_STATUSES,
    PENDING_STATUSES,
    STATUSES,
    Count,
    Lead,
    PendingStats,
    Received,
    Settlement,
    Store,
)

__all__ = ["ACCEPTED_STATUSES", "PENDING_STATUSES", "STATUSES", "Count", "Lead", "PendingStats", "Received",
           "Settlement", "Store", "new_lead_id", "open_store", "sqlite_path"]

# Crockford base32: no I, L, O, U, so ids survive being read aloud or retyped.
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_lead_id(at: float | None = None) -> str:
    """A 26-character ULID: 48-bit milliseconds (of ``at``, default now) then 80 random bits.

    Sorts by creation time as text, is URL-safe, and needs no coordination
    between processes.
    """
    millis = int((time.time() if at is None else at) * 1000)
    value = (millis & ((1 << 48) - 1)) << 80
    value |= int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def sqlite_path(url: str) -> Path:
    """The file a ``sqlite:///relative`` or ``sqlite:////absolute`` URL names."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(f"invalid SQLite database URL {url!r}: "
                         "use sqlite:///relative/path.db or sqlite:////absolute/path.db")
    path = url[len(prefix):]
    if path == ":memory:":
        raise ValueError("sqlite:///:memory: is not supported: the outbox must be durable "
                         "and shared between processes")
    return Path(path)


def open_store(url: str, *, synchronous: str = "FULL", commit_delay_s: float = 0.0,
               migrate: bool = True) -> Store:
    """Open (and by default migrate) the outbox named by ``url``; ``synchronous`` and
    ``commit_delay_s`` apply to SQLite only."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        from relay.store.sqlite import SQLiteStore

        store: Store = SQLiteStore(sqlite_path(url), synchronous=synchronous, commit_delay_s=commit_delay_s)
    elif scheme in ("postgres", "postgresql"):
        from relay.store.postgres import PostgresStore

        store = PostgresStore(url)
    else:
        raise ValueError(f"unknown database URL scheme {scheme!r} in RELAY_DATABASE_URL; "
                         "expected sqlite:///path/to/relay.db or postgresql://host/dbname")
    if migrate:
        store.migrate()
    return store
