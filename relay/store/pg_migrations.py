"""Versioned schema changes for the PostgreSQL outbox.

The same tables as ``relay.store.migrations`` (SQLite), spelled for PostgreSQL:
times are DOUBLE PRECISION (PostgreSQL's REAL is single precision and would
round epoch seconds), bodies BYTEA, the attempt sequence an identity column.
Each entry is applied once, in order, inside the migrating transaction, and
recorded in ``schema_migrations`` (``SqlStore.migrate``). Never edit an applied entry: append a new one.
"""
from __future__ import annotations

from relay.store.migrations import BATCH_COLUMNS, CONSOLE_COLUMNS, CONSOLE_INDEXES, console_tables

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, (
        """CREATE TABLE leads (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            status TEXT NOT NULL,
            received_at DOUBLE PRECISION NOT NULL,
            received_day TEXT NOT NULL,
            method TEXT NOT NULL,
            content_type TEXT NOT NULL,
            query_string TEXT NOT NULL,
            headers_json TEXT NOT NULL,
            body BYTEA NOT NULL,
            client_addr TEXT NOT NULL,
            call_json TEXT,
            error_json TEXT,
            mapping_version TEXT NOT NULL,
            dedupe_key TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at DOUBLE PRECISION,
            lease_owner TEXT,
            lease_until DOUBLE PRECISION,
            response_status INTEGER,
            response_body TEXT,
            delivered_at DOUBLE PRECISION,
            updated_at DOUBLE PRECISION NOT NULL,
            request_id TEXT NOT NULL DEFAULT ''
        )""",
        # Only waiting leads are ever claimed: a partial index stays small however
        # many delivered rows accumulate before a purge.
        "CREATE INDEX leads_claimable ON leads (next_attempt_at, id)"
        " WHERE status IN ('queued', 'retry')",
        "CREATE INDEX leads_status_received ON leads (status, received_at)",
        "CREATE INDEX leads_source_received ON leads (source, received_at)",
        "CREATE INDEX leads_received ON leads (received_at)",
        """CREATE TABLE attempts (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            lead_id TEXT NOT NULL,
            attempted_at DOUBLE PRECISION NOT NULL,
            result TEXT NOT NULL,
            response_status INTEGER,
            response_body TEXT,
            reason TEXT NOT NULL DEFAULT '',
            latency_s DOUBLE PRECISION,
            next_attempt_at DOUBLE PRECISION
        )""",
        "CREATE INDEX attempts_lead ON attempts (lead_id, seq)",
        # The primary key is the unique index that makes two instances receiving the
        # same vendor retry at once agree on one lead (INSERT ... ON CONFLICT).
        """CREATE TABLE dedupe_keys (
            source TEXT NOT NULL,
            dedupe_key TEXT NOT NULL,
            lead_id TEXT NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (source, dedupe_key)
        )""",
        "CREATE INDEX dedupe_keys_lead ON dedupe_keys (lead_id)",
        "CREATE INDEX dedupe_keys_expiry ON dedupe_keys (expires_at)",
        "CREATE TABLE heartbeat (id INTEGER PRIMARY KEY, beat_at DOUBLE PRECISION NOT NULL)",
    )),
    (2, (*BATCH_COLUMNS,
        # A fetching lead is claimed like a queued one, so the claim index covers it too.
        "DROP INDEX leads_claimable",
        "CREATE INDEX leads_claimable ON leads (next_attempt_at, id)"
        " WHERE status IN ('fetching', 'queued', 'retry')",
    )),
)

MIGRATIONS = (*MIGRATIONS, (3, (
    *CONSOLE_COLUMNS,
    "UPDATE leads SET caller_id = (call_json::jsonb -> 'body' ->> 'caller_id'),"
    " email = lower(trim(call_json::jsonb -> 'body' ->> 'email')) WHERE call_json IS NOT NULL",
    *CONSOLE_INDEXES,
    *console_tables("DOUBLE PRECISION", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
)))

# Retention and erasure (see relay.store.retention).
MIGRATIONS = (*MIGRATIONS, (4, (
    "ALTER TABLE leads ADD COLUMN redacted_at DOUBLE PRECISION",
    "CREATE TABLE maintenance (task TEXT PRIMARY KEY, owner TEXT NOT NULL,"
    " run_at DOUBLE PRECISION NOT NULL)",
)))
