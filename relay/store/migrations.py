"""Versioned schema changes for the SQL outbox.

Each entry is applied once, in order, inside the migrating transaction, and
recorded in ``schema_migrations`` (``SqlStore.migrate`` runs both dialects' lists).
Never edit an applied entry: append a new one.
The SQL sticks to types and syntax PostgreSQL accepts too, apart from BLOB and
AUTOINCREMENT, which a PostgreSQL backend spells BYTEA and an identity column.
"""
from __future__ import annotations

# Migration 2, the same in both dialects: one vendor request may make several leads
# (a batch), and a lead may be stored raw until the worker fetches it (fetched_json).
# Leads written before it each were a batch of one, named by their own id.
BATCH_COLUMNS: tuple[str, ...] = (
    "ALTER TABLE leads ADD COLUMN batch_id TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE leads ADD COLUMN batch_index INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE leads ADD COLUMN batch_size INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE leads ADD COLUMN fetched_json TEXT",
    "UPDATE leads SET batch_id = id WHERE batch_id = ''",
    "CREATE INDEX leads_batch ON leads (batch_id)",
)

# Retention and erasure: when a lead's personal data was blanked, and whose turn the periodic
# work is (one row per task, taken by the first process whose interval has come).
RETENTION = (
    "ALTER TABLE leads ADD COLUMN redacted_at REAL",
    "CREATE TABLE maintenance (task TEXT PRIMARY KEY, owner TEXT NOT NULL, run_at REAL NOT NULL)",
)

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, (
        """CREATE TABLE leads (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            status TEXT NOT NULL,
            received_at REAL NOT NULL,
            received_day TEXT NOT NULL,
            method TEXT NOT NULL,
            content_type TEXT NOT NULL,
            query_string TEXT NOT NULL,
            headers_json TEXT NOT NULL,
            body BLOB NOT NULL,
            client_addr TEXT NOT NULL,
            call_json TEXT,
            error_json TEXT,
            mapping_version TEXT NOT NULL,
            dedupe_key TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            lease_owner TEXT,
            lease_until REAL,
            response_status INTEGER,
            response_body TEXT,
            delivered_at REAL,
            updated_at REAL NOT NULL,
            request_id TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX leads_due ON leads (status, next_attempt_at)",
        "CREATE INDEX leads_status_received ON leads (status, received_at)",
        "CREATE INDEX leads_source_received ON leads (source, received_at)",
        "CREATE INDEX leads_received ON leads (received_at)",
        """CREATE TABLE attempts (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            lead_id TEXT NOT NULL,
            attempted_at REAL NOT NULL,
            result TEXT NOT NULL,
            response_status INTEGER,
            response_body TEXT,
            reason TEXT NOT NULL DEFAULT '',
            latency_s REAL,
            next_attempt_at REAL
        )""",
        "CREATE INDEX attempts_lead ON attempts (lead_id, seq)",
        """CREATE TABLE dedupe_keys (
            source TEXT NOT NULL,
            dedupe_key TEXT NOT NULL,
            lead_id TEXT NOT NULL,
            expires_at REAL NOT NULL,
            PRIMARY KEY (source, dedupe_key)
        )""",
        "CREATE INDEX dedupe_keys_lead ON dedupe_keys (lead_id)",
        "CREATE INDEX dedupe_keys_expiry ON dedupe_keys (expires_at)",
        "CREATE TABLE heartbeat (id INTEGER PRIMARY KEY, beat_at REAL NOT NULL)",
    )),
    (2, BATCH_COLUMNS),
)


# Migration 3, the console's: each lead's normalised caller_id and email (from its mapped
# call) in indexed columns for search; the keyset list's indexes, which end in id so a page
# boundary between two leads received in the same instant is exact; duplicate counters per
# source and quarter hour (every time zone's day starts on a quarter hour, so a count by day
# in any zone is exact); and the operators' audit log.
CONSOLE_INDEXES: tuple[str, ...] = (
    "DROP INDEX leads_received",
    "DROP INDEX leads_source_received",
    "DROP INDEX leads_status_received",
    "CREATE INDEX leads_received_id ON leads (received_at, id)",
    "CREATE INDEX leads_source_received_id ON leads (source, received_at, id)",
    "CREATE INDEX leads_status_received_id ON leads (status, received_at, id)",
    "CREATE INDEX leads_caller_id ON leads (caller_id, received_at, id) WHERE caller_id IS NOT NULL",
    "CREATE INDEX leads_email ON leads (email, received_at, id) WHERE email IS NOT NULL",
    # The overview's delivery lag per source, read from waiting leads alone (a small index).
    "CREATE INDEX leads_pending_source ON leads (source, received_at)"
    " WHERE status IN ('fetching', 'queued', 'retry')",
)


def console_tables(time_type: str, serial: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE duplicate_counts (
            source TEXT NOT NULL,
            slot_at {time_type} NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (source, slot_at)
        )""",
        f"""CREATE TABLE audit_log (
            seq {serial},
            at {time_type} NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            selection TEXT NOT NULL,
            lead_count INTEGER NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX audit_log_at ON audit_log (at)",
    )


CONSOLE_COLUMNS: tuple[str, ...] = (
    "ALTER TABLE leads ADD COLUMN caller_id TEXT",
    "ALTER TABLE leads ADD COLUMN email TEXT",
)

MIGRATIONS = (*MIGRATIONS, (3, (
    *CONSOLE_COLUMNS,
    # Leads stored before: their contact from the call they were mapped to.
    "UPDATE leads SET caller_id = json_extract(call_json, '$.body.caller_id'),"
    " email = lower(trim(json_extract(call_json, '$.body.email'))) WHERE call_json IS NOT NULL",
    *CONSOLE_INDEXES,
    *console_tables("REAL", "INTEGER PRIMARY KEY AUTOINCREMENT"),
)))

MIGRATIONS = (*MIGRATIONS, (4, RETENTION))  # retention and erasure: relay.store.retention
