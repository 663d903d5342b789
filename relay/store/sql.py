"""What the SQL outboxes share: every query, the dedupe rules and the migration runner.

SQLite and PostgreSQL accept the same SQL for all of it (upserts, RETURNING,
aggregate FILTER, NULLS FIRST), written here with ``:name`` placeholders. A
backend supplies only how a piece of work reaches its database: a :class:`Tx`
that runs statements, a read path, a write path (SQLite's group commit, a
PostgreSQL transaction), and the few clauses its dialect spells differently.
"""
from __future__ import annotations

import abc
import builtins
import datetime
import math
import time
import zoneinfo
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence, TypeVar

from relay.store import new_lead_id
from relay.store.base import (
    ACCEPTED_STATUSES,
    DUPLICATE_SLOT_S,
    PENDING_STATUSES,
    AuditEntry,
    Count,
    Lead,
    LeadQuery,
    PendingStats,
    Received,
    Settlement,
    SourceActivity,
    Store,
)
from relay.store.retention import RetentionSql
from relay.store.rows import (
    LEAD_COLUMNS,
    LEAD_FIELDS,
    check_remap,
    check_resolve,
    check_settlement,
    contact_columns,
    dumps,
    lead_from_row,
    new_batch_rows,
    sql_list,
    truncate,
)

T = TypeVar("T")
Row = Mapping[str, Any]
Params = Mapping[str, Any]
Migrations = tuple[tuple[int, tuple[str, ...]], ...]

# Ids per statement when deleting many: well under SQLite's bound-parameter limit.
CHUNK = 500

NOT_LEASED = "(lease_until IS NULL OR lease_until <= :now)"
# A lead the worker may take now: it waits for the worker, is due, and nobody holds it.
CLAIMABLE = (f"status IN {sql_list(PENDING_STATUSES)}"
             " AND (next_attempt_at IS NULL OR next_attempt_at <= :now)"
             f" AND {NOT_LEASED}")
LEASE = "lease_owner = :owner, lease_until = :until, updated_at = :now"

INSERT_LEAD = (f"INSERT INTO leads ({LEAD_COLUMNS})"
               f" VALUES ({', '.join(':' + name for name in LEAD_FIELDS)})")
SELECT_LEAD = f"SELECT {LEAD_COLUMNS} FROM leads"
# Takes the key unless a live one is held: a racing insert of the same key waits on
# the unique (source, dedupe_key) index, then finds the key live and takes nothing.
TAKE_KEY = ("INSERT INTO dedupe_keys (source, dedupe_key, lead_id, expires_at)"
            " VALUES (:source, :key, :id, :expires) ON CONFLICT (source, dedupe_key) DO UPDATE"
            " SET lead_id = excluded.lead_id, expires_at = excluded.expires_at"
            " WHERE dedupe_keys.expires_at <= :at RETURNING lead_id")
POINT_KEY = ("UPDATE dedupe_keys SET lead_id = :id, expires_at = :expires"
             " WHERE source = :source AND dedupe_key = :key")
SET_KEY = ("INSERT INTO dedupe_keys (source, dedupe_key, lead_id, expires_at)"
           " VALUES (:source, :key, :id, :expires) ON CONFLICT (source, dedupe_key) DO UPDATE"
           " SET lead_id = excluded.lead_id, expires_at = excluded.expires_at")
RELEASE_KEYS = "DELETE FROM dedupe_keys WHERE lead_id = :id"
HOLDER = (f"SELECT {', '.join('l.' + name for name in LEAD_FIELDS)}"
          " FROM dedupe_keys d JOIN leads l ON l.id = d.lead_id"
          " WHERE d.source = :source AND d.dedupe_key = :key AND d.expires_at > :at")
RECORD_ATTEMPT = ("INSERT INTO attempts (lead_id, attempted_at, result, response_status,"
                  " response_body, reason, latency_s, next_attempt_at) VALUES (:id, :at, :result,"
                  " :response_status, :response_body, :reason, :latency_s, :next)")


class Tx(Protocol):
    """One connection's statements, inside whatever transaction the backend opened."""

    def run(self, statement: str, params: Params | None = None) -> int:
        """Execute; returns the affected row count."""

    def all(self, statement: str, params: Params | None = None) -> list[Row]: ...


def one(tx: Tx, statement: str, params: Params | None = None) -> Row | None:
    rows = tx.all(statement, params)
    return rows[0] if rows else None


class SqlStore(RetentionSql, Store):
    """Store on a SQL database; subclasses supply connections and dialect details."""

    migrations: Migrations = ()
    time_type = "REAL"  # a column type that holds epoch seconds to the microsecond
    skip_locked = ""  # claim_due's row lock, where rows can be locked one by one
    lock_rows = ""  # purge's row lock, likewise
    # The quarter hour (DUPLICATE_SLOT_S) a lead was received in, as a whole number.
    received_slot = f"CAST(received_at / {DUPLICATE_SLOT_S} AS INTEGER)"

    # --- what a backend supplies ---

    @abc.abstractmethod
    def _read(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` on a connection; its errors leave as StoreUnavailable."""

    @abc.abstractmethod
    def _write(self, work: Callable[[Tx], T], *, hot: bool = False,
               one_statement: bool = False) -> T:
        """Run ``work`` in one committed transaction; rolled back on any error.

        ``hot`` marks the intake and delivery path, where SQLite shares commits between
        threads; ``one_statement`` lets PostgreSQL skip BEGIN and COMMIT round trips.
        """

    def _before_migrating(self, tx: Tx) -> None:
        """Serialise instances and pick the schema; SQLite's write lock already does."""

    def _after_migrating(self, tx: Tx, version: int) -> None:
        """Anything a dialect records about the schema besides schema_migrations."""

    # --- schema ---

    def migrate(self) -> None:
        def write(tx: Tx) -> None:
            self._before_migrating(tx)
            tx.run("CREATE TABLE IF NOT EXISTS schema_migrations ("
                   f" version INTEGER PRIMARY KEY, applied_at {self.time_type} NOT NULL)")
            applied = {row["version"] for row in tx.all("SELECT version FROM schema_migrations")}
            for version, statements in sorted(self.migrations, key=lambda migration: migration[0]):
                if version in applied:
                    continue
                for statement in statements:
                    tx.run(statement)
                tx.run("INSERT INTO schema_migrations (version, applied_at) VALUES (:v, :at)",
                       {"v": version, "at": time.time()})
            self._after_migrating(tx, max(version for version, _ in self.migrations))

        self._write(write)

    def schema_version(self) -> int:
        row = self._read(lambda tx: one(tx, "SELECT MAX(version) AS v FROM schema_migrations"))
        return int(row["v"] or 0) if row else 0

    # --- receiving ---

    def insert_batch(self, received: Sequence[Received]) -> list[tuple[Lead, bool]]:
        items = list(received)
        if not items:
            return []
        # Fixed before the write: SQLite's group commit may run a write twice.
        rows = new_batch_rows([new_lead_id() for _ in items], items)

        def write(tx: Tx) -> list[tuple[Lead, bool]]:
            return [_insert_one(tx, item, row) for item, row in zip(items, rows, strict=True)]

        return self._write(write, hot=True)

    def dedupe_holder(self, source: str, key: str, now: float) -> str | None:
        row = self._read(lambda tx: one(tx, HOLDER, {"source": source, "key": key, "at": now}))
        return None if row is None else str(row["id"])

    # --- delivering ---

    def claim(self, lead_id: str, owner: str, lease_s: float, now: float) -> Lead | None:
        row = self._write(lambda tx: one(
            tx, f"UPDATE leads SET {LEASE} WHERE id = :id AND {CLAIMABLE} RETURNING {LEAD_COLUMNS}",
            {"owner": owner, "until": now + lease_s, "now": now, "id": lead_id}), hot=True)
        return None if row is None else lead_from_row(row)

    def claim_due(self, owner: str, limit: int, lease_s: float, now: float) -> list[Lead]:
        if limit <= 0:
            return []
        # Where rows lock singly, leads another instance is claiming right now are passed
        # over, not waited for; READ COMMITTED re-checks CLAIMABLE on rows it does lock.
        rows = self._write(lambda tx: tx.all(
            f"UPDATE leads SET {LEASE} WHERE id IN (SELECT id FROM leads WHERE {CLAIMABLE}"
            f" ORDER BY next_attempt_at NULLS FIRST, id LIMIT :limit{self.skip_locked})"
            f" RETURNING {LEAD_COLUMNS}",
            {"owner": owner, "until": now + lease_s, "now": now, "limit": limit}))
        leads = [lead_from_row(row) for row in rows]
        return sorted(leads, key=lambda lead: (lead.next_attempt_at is not None,
                                               lead.next_attempt_at or 0.0, lead.id))

    def settle(self, lead_id: str, owner: str, settlement: Settlement) -> bool:
        return self.settle_many(owner, [(lead_id, settlement)])[0]

    def settle_many(self, owner: str, settlements: Sequence[tuple[str, Settlement]]) -> builtins.list[bool]:
        for _, settlement in settlements:
            check_settlement(settlement)
        params = [_settle_params(lead_id, owner, settlement) for lead_id, settlement in settlements]

        def write(tx: Tx) -> builtins.list[bool]:
            return [_settle_one(tx, one_params) for one_params in params]

        return self._write(write, hot=True)

    def resolve(self, lead_id: str, owner: str, *, status: str, call: dict[str, Any] | None,
                error: dict[str, Any] | None, fetched: Any | None, mapping_version: str,
                now: float) -> bool:
        check_resolve(status, call)
        sending = status == "queued"
        # A lead to send stays with its worker, which sends it next; any other is let go.
        lease = "" if sending else ", lease_owner = NULL, lease_until = NULL"
        params = {"id": lead_id, "owner": owner, "status": status, "call": dumps(call),
                  "error": dumps(error), "fetched": dumps(fetched), "version": mapping_version,
                  "next": now if sending else None, "now": now, **contact_columns(call)}

        def write(tx: Tx) -> bool:
            moved = tx.run(
                "UPDATE leads SET status = :status, call_json = :call, error_json = :error,"
                " caller_id = :caller_id, email = :email,"
                " fetched_json = :fetched, mapping_version = :version, next_attempt_at = :next,"
                f" updated_at = :now{lease} WHERE id = :id AND lease_owner = :owner"
                " AND status = 'fetching'", params)
            if moved == 1 and not sending:
                tx.run(RELEASE_KEYS, params)  # the vendor may send this lead again
            return moved == 1

        return self._write(write, hot=True)

    def release(self, lead_id: str, owner: str) -> bool:
        params = {"id": lead_id, "owner": owner, "now": time.time()}
        return self._write(lambda tx: tx.run(
            "UPDATE leads SET lease_owner = NULL, lease_until = NULL, updated_at = :now"
            " WHERE id = :id AND lease_owner = :owner", params) == 1,
            hot=True, one_statement=True)

    def defer(self, lead_id: str, owner: str, next_attempt_at: float, now: float) -> bool:
        params = {"id": lead_id, "owner": owner, "next": next_attempt_at, "now": now}
        return self._write(lambda tx: tx.run(
            "UPDATE leads SET next_attempt_at = :next, lease_owner = NULL, lease_until = NULL,"
            " updated_at = :now WHERE id = :id AND lease_owner = :owner"
            f" AND status IN {sql_list(PENDING_STATUSES)}", params) == 1,
            hot=True, one_statement=True)

    # --- reading ---

    def get(self, lead_id: str) -> Lead | None:
        row = self._read(lambda tx: one(tx, f"{SELECT_LEAD} WHERE id = :id", {"id": lead_id}))
        return None if row is None else lead_from_row(row)

    def attempts(self, lead_id: str) -> list[Settlement]:
        rows = self._read(lambda tx: tx.all(
            "SELECT result, attempted_at, response_status, response_body, next_attempt_at,"
            " reason, latency_s FROM attempts WHERE lead_id = :id ORDER BY seq", {"id": lead_id}))
        return [Settlement(result=row["result"], at=row["attempted_at"],
                           response_status=row["response_status"],
                           response_body=row["response_body"],
                           next_attempt_at=row["next_attempt_at"], reason=row["reason"] or "",
                           latency_s=row["latency_s"]) for row in rows]

    def counts(self, since: float | None = None, until: float | None = None) -> list[Count]:
        where, params = filters(since=since, until=until)
        rows = self._read(lambda tx: tx.all(
            f"SELECT received_day, source, status, COUNT(*) AS n FROM leads {where}"
            " GROUP BY received_day, source, status ORDER BY received_day, source, status",
            params))
        return [Count(day=row["received_day"], source=row["source"], status=row["status"],
                      count=row["n"]) for row in rows]

    def list(self, status: str | None = None, source: str | None = None,
             limit: int = 100, batch_id: str | None = None) -> list[Lead]:
        where, params = filters(status=status, source=source, batch_id=batch_id)
        rows = self._read(lambda tx: tx.all(
            f"{SELECT_LEAD} {where} ORDER BY received_at DESC, id DESC LIMIT :limit",
            {**params, "limit": limit}))
        return [lead_from_row(row) for row in rows]

    def pending_stats(self, now: float) -> PendingStats:
        pending = f"status IN {sql_list(PENDING_STATUSES)}"
        row = self._read(lambda tx: one(
            tx, f"SELECT COUNT(*) FILTER (WHERE {pending}) AS pending,"
            f" MIN(received_at) FILTER (WHERE {pending}) AS oldest,"
            " COUNT(*) FILTER (WHERE status = 'dead') AS dead"
            f" FROM leads WHERE status IN {sql_list((*PENDING_STATUSES, 'dead'))}"))
        assert row is not None  # an aggregate always answers one row
        return PendingStats(pending=row["pending"], oldest_received_at=row["oldest"],
                            dead=row["dead"])

    # --- operating ---

    def requeue(self, lead_ids: Iterable[str] | None = None, source: str | None = None,
                status: str = "dead", now: float = 0.0) -> int:
        ids = None if lead_ids is None else list(lead_ids)
        if ids == []:
            return 0
        where, params = filters(status=status, source=source, ids=ids)
        # Only leads with a call can be delivered; never steal a live lease.
        return self._write(lambda tx: tx.run(
            "UPDATE leads SET status = 'queued', next_attempt_at = :now, attempts = 0,"
            f" lease_owner = NULL, lease_until = NULL, updated_at = :now {where}"
            f" AND call_json IS NOT NULL AND {NOT_LEASED}", {**params, "now": now}),
            one_statement=True)

    def remap(self, lead_id: str, status: str, call: dict[str, Any] | None,
              error: dict[str, Any] | None, mapping_version: str, now: float,
              dedupe_window_s: float = 0.0) -> bool:
        check_remap(status, call)
        accepted = status in ACCEPTED_STATUSES
        params = {"id": lead_id, "status": status, "call": dumps(call), "error": dumps(error),
                  "version": mapping_version, "next": now if accepted else None, "now": now,
                  **contact_columns(call)}

        def write(tx: Tx) -> bool:
            moved = tx.run(
                "UPDATE leads SET status = :status, call_json = :call, error_json = :error,"
                " caller_id = :caller_id, email = :email,"
                " mapping_version = :version, next_attempt_at = :next, attempts = 0,"
                " lease_owner = NULL, lease_until = NULL, delivered_at = NULL, updated_at = :now"
                f" WHERE id = :id AND {NOT_LEASED}", params)
            if moved != 1:
                return False
            if not accepted:
                tx.run(RELEASE_KEYS, params)
            elif dedupe_window_s > 0:
                _take_own_key(tx, lead_id, now + dedupe_window_s)
            return True

        return self._write(write)

    def purge(self, older_than: float, statuses: tuple[str, ...] = ("delivered",)) -> int:
        if not statuses:
            return 0
        where, params = filters(statuses=statuses)
        params = {**params, "older_than": older_than}

        def write(tx: Tx) -> int:
            doomed = [row["id"] for row in tx.all(
                f"SELECT id FROM leads {where} AND received_at < :older_than{self.lock_rows}",
                params)]
            _delete_leads(tx, doomed)
            tx.run("DELETE FROM dedupe_keys WHERE expires_at < :older_than", params)
            return len(doomed)

        return self._write(write)

    # --- the console ---

    def search(self, query: LeadQuery, limit: int = 50) -> builtins.list[Lead]:
        where, params = lead_query_filters(query)
        rows = self._read(lambda tx: tx.all(
            f"{SELECT_LEAD} {where} ORDER BY received_at DESC, id DESC LIMIT :limit",
            {**params, "limit": limit}))
        return [lead_from_row(row) for row in rows]

    def activity(self, since: float, sources: Sequence[str]) -> builtins.list[SourceActivity]:
        def read(tx: Tx) -> builtins.list[SourceActivity]:
            by_status: dict[str, dict[str, int]] = {name: {} for name in sources}
            for row in tx.all(f"SELECT source, status, COUNT(*) AS n FROM ({RECENT}) AS recent"
                              " GROUP BY source, status", {"since": since}):
                by_status.setdefault(row["source"], {})[row["status"]] = int(row["n"])
            duplicates = {row["source"]: int(row["n"]) for row in tx.all(
                "SELECT source, SUM(count) AS n FROM duplicate_counts WHERE slot_at >= :slot"
                " GROUP BY source", {"slot": slot_of(since)})}
            for name in duplicates:
                by_status.setdefault(name, {})
            return [SourceActivity(source=name, by_status=counts, duplicates=duplicates.get(name, 0),
                                   last_received_at=_last_received(tx, name),
                                   oldest_pending_at=_oldest_pending(tx, name))
                    for name, counts in sorted(by_status.items())]

        return self._read(read)

    def daily_counts(self, zone: str, since: float | None = None,
                     until: float | None = None) -> builtins.list[Count]:
        tz = zoneinfo.ZoneInfo(zone)
        where, params = filters(since=since, until=until)
        slots = {"since": -math.inf if since is None else slot_of(since),
                 "until": math.inf if until is None else until}

        def read(tx: Tx) -> tuple[list[Row], list[Row]]:
            leads = tx.all(f"SELECT {self.received_slot} AS slot, source, status, COUNT(*) AS n"
                           f" FROM leads {where} GROUP BY {self.received_slot}, source, status", params)
            duplicates = tx.all("SELECT slot_at, source, count FROM duplicate_counts"
                                " WHERE slot_at >= :since AND slot_at < :until", slots)
            return leads, duplicates

        lead_rows, duplicate_rows = self._read(read)
        totals: dict[tuple[str, str, str], int] = {}
        for row in lead_rows:
            key = (local_day(float(row["slot"]) * DUPLICATE_SLOT_S, tz), row["source"], row["status"])
            totals[key] = totals.get(key, 0) + int(row["n"])
        for row in duplicate_rows:
            key = (local_day(float(row["slot_at"]), tz), row["source"], "duplicate")
            totals[key] = totals.get(key, 0) + int(row["count"])
        return [Count(day=day, source=source, status=status, count=count)
                for (day, source, status), count in sorted(totals.items())]

    def delete(self, lead_ids: Sequence[str]) -> int:
        ids = list(dict.fromkeys(lead_ids))
        return self._write(lambda tx: _delete_leads(tx, ids)) if ids else 0

    def record_audit(self, entry: AuditEntry) -> None:
        self._write(lambda tx: tx.run(
            "INSERT INTO audit_log (at, actor, action, selection, lead_count, detail)"
            " VALUES (:at, :actor, :action, :selection, :lead_count, :detail)",
            {"at": entry.at, "actor": entry.actor, "action": entry.action, "selection": entry.selection,
             "lead_count": entry.lead_count, "detail": entry.detail}), one_statement=True)

    def audit_log(self, limit: int = 100) -> builtins.list[AuditEntry]:
        rows = self._read(lambda tx: tx.all(
            "SELECT seq, at, actor, action, selection, lead_count, detail FROM audit_log"
            " ORDER BY seq DESC LIMIT :limit", {"limit": limit}))
        return [AuditEntry(at=row["at"], actor=row["actor"], action=row["action"],
                           selection=row["selection"], lead_count=row["lead_count"],
                           detail=row["detail"], seq=row["seq"]) for row in rows]

    def check_writable(self) -> None:
        self._write(lambda tx: tx.run(
            "INSERT INTO heartbeat (id, beat_at) VALUES (1, :now)"
            " ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at", {"now": time.time()}),
            one_statement=True)


# --- dedupe ---

def _insert_one(tx: Tx, item: Received, row: dict[str, Any]) -> tuple[Lead, bool]:
    if item.dedupe_key and item.dedupe_window_s > 0:
        earlier = _dedupe(tx, item, row["id"])
        if earlier is not None:
            return earlier, False
    tx.run(INSERT_LEAD, row)
    # Built from what was written, not read back: the write stays on the database alone.
    return lead_from_row(row), True


def _dedupe(tx: Tx, item: Received, lead_id: str) -> Lead | None:
    """The live earlier lead holding the key; None once ``lead_id`` may be written.

    Only an accepted lead takes the key; a refused or dropped one is written without it.
    """
    params = {"source": item.source, "key": item.dedupe_key, "id": lead_id,
              "at": item.received_at, "expires": item.received_at + item.dedupe_window_s}
    if item.accepted and one(tx, TAKE_KEY, params) is not None:
        return None
    holder = one(tx, HOLDER, params)
    if holder is not None:
        _count_duplicate(tx, item)
        return lead_from_row(holder)
    if item.accepted:
        tx.run(POINT_KEY, params)  # the key is live but its lead was purged
    return None


def _take_own_key(tx: Tx, lead_id: str, expires_at: float) -> None:
    row = one(tx, "SELECT source, dedupe_key FROM leads WHERE id = :id", {"id": lead_id})
    if row is not None and row["dedupe_key"]:
        tx.run(SET_KEY, {"source": row["source"], "key": row["dedupe_key"], "id": lead_id,
                         "expires": expires_at})


# --- the console: duplicate counters, deletion, time slots ---

# The overview's recent leads, read by received_at. ORDER BY keeps SQLite from folding the
# subquery into the GROUP BY, where it would pick the source index and visit every lead.
RECENT = "SELECT source, status FROM leads WHERE received_at >= :since ORDER BY received_at"

COUNT_DUPLICATE = ("INSERT INTO duplicate_counts (source, slot_at, count) VALUES (:source, :slot, 1)"
                   " ON CONFLICT (source, slot_at) DO UPDATE SET count = duplicate_counts.count + 1")


def _count_duplicate(tx: Tx, item: Received) -> None:
    """A repeat stores no lead; one upsert in the same transaction counts it for the console."""
    tx.run(COUNT_DUPLICATE, {"source": item.source, "slot": slot_of(item.received_at)})


def _delete_leads(tx: Tx, ids: Sequence[str]) -> int:
    deleted = 0
    for start in range(0, len(ids), CHUNK):
        chunk, chunk_params = placeholders(ids[start:start + CHUNK], "id")
        tx.run(f"DELETE FROM attempts WHERE lead_id IN {chunk}", chunk_params)
        tx.run(f"DELETE FROM dedupe_keys WHERE lead_id IN {chunk}", chunk_params)
        deleted += tx.run(f"DELETE FROM leads WHERE id IN {chunk}", chunk_params)
    return deleted


def _last_received(tx: Tx, source: str) -> float | None:
    row = one(tx, "SELECT MAX(received_at) AS at FROM leads WHERE source = :source", {"source": source})
    return None if row is None else row["at"]


def _oldest_pending(tx: Tx, source: str) -> float | None:
    # One step down leads_pending_source, whose WHERE this repeats word for word.
    row = one(tx, f"SELECT MIN(received_at) AS at FROM leads WHERE source = :source"
                  f" AND status IN {sql_list(PENDING_STATUSES)}", {"source": source})
    return None if row is None else row["at"]


def slot_of(epoch: float) -> float:
    """The start of the quarter hour holding ``epoch``."""
    return math.floor(epoch / DUPLICATE_SLOT_S) * DUPLICATE_SLOT_S


def local_day(epoch: float, tz: datetime.tzinfo) -> str:
    return datetime.datetime.fromtimestamp(epoch, tz).strftime("%Y-%m-%d")


def lead_query_filters(query: LeadQuery) -> tuple[str, dict[str, Any]]:
    where, params = filters(status=query.status, source=query.source, since=query.since,
                            until=query.until, ids=None if query.ids is None else list(query.ids))
    for column in ("caller_id", "email"):
        value = getattr(query, column)
        if value is not None:
            where += f" AND {column} = :{column}"
            params[column] = value
    if query.after is not None:
        where += " AND (received_at, id) < (:after_at, :after_id)"
        params["after_at"], params["after_id"] = query.after
    return where, params


# --- filters ---

def placeholders(values: Sequence[Any], prefix: str) -> tuple[str, dict[str, Any]]:
    """``(:prefix0, :prefix1, ...)`` and its parameters: both dialects take the list as is."""
    names = [f"{prefix}{index}" for index in range(len(values))]
    return f"({', '.join(':' + name for name in names)})", dict(zip(names, values, strict=True))


def filters(*, status: str | None = None, statuses: Sequence[str] | None = None,
            source: str | None = None, ids: Sequence[str] | None = None,
            batch_id: str | None = None, since: float | None = None,
            until: float | None = None) -> tuple[str, dict[str, Any]]:
    """A WHERE clause (never empty, so callers may append ``AND ...``) and its parameters."""
    equal = {"status": status, "source": source, "batch_id": batch_id}
    clauses = [f"{column} = :{column}" for column, value in equal.items() if value is not None]
    params: dict[str, Any] = {column: value for column, value in equal.items() if value is not None}
    for column, values in (("status", statuses), ("id", ids)):
        if values is not None:
            listed, named = placeholders(values, f"{column}_")
            clauses.append(f"{column} IN {listed}" if values else "1 = 0")
            params.update(named)
    if since is not None:
        clauses.append("received_at >= :since")
        params["since"] = since
    if until is not None:
        clauses.append("received_at < :until")
        params["until"] = until
    return "WHERE " + (" AND ".join(clauses) if clauses else "1 = 1"), params


def _settle_params(lead_id: str, owner: str, settlement: Settlement) -> dict[str, Any]:
    result = settlement.result
    return {"id": lead_id, "owner": owner, "at": settlement.at, "result": result,
            # A fetching lead that must wait still has to be fetched first.
            "fetching_result": "fetching" if result == "retry" else result,
            "next": settlement.next_attempt_at if result == "retry" else None,
            "response_status": settlement.response_status,
            "response_body": truncate(settlement.response_body),
            "reason": settlement.reason, "latency_s": settlement.latency_s,
            "delivered_at": settlement.at if result == "delivered" else None}


def _settle_one(tx: Tx, params: dict[str, Any]) -> bool:
    moved = tx.run(
        "UPDATE leads SET status = CASE WHEN status = 'fetching' THEN :fetching_result"
        " ELSE :result END, attempts = attempts + 1, next_attempt_at = :next,"
        " lease_owner = NULL, lease_until = NULL, response_status = :response_status,"
        " response_body = :response_body, delivered_at = :delivered_at, updated_at = :at"
        " WHERE id = :id AND lease_owner = :owner", params)
    if moved != 1:
        return False
    tx.run(RECORD_ATTEMPT, params)
    return True
