"""Retention and erasure: personal data kept only as long as configured, and one person forgotten.

``redact`` blanks what a lead carries about a person (raw request, call, fetched data,
Trackdrive's answers, dedupe key) once it is older than its status's retention, keeping
the row (status, source, times, attempts) with a ``redacted_at`` mark. ``forget``
deletes every stored trace of one phone number or email address. Both are plain
transactions, safe to run from several workers and instances at once; ``take_turn``
lets only one of them do the periodic work per interval.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Protocol, TypeVar
from urllib.parse import unquote_plus

T = TypeVar("T")
CHUNK = 500
# Text that may be a phone number: digits with the usual separators between them.
_PHONE_LIKE = re.compile(r"\+?\d[\d\s().\-/]{5,}\d")
_NOT_DIGIT = re.compile(r"\D")
_PHONE_TAIL = 9  # trailing digits compared: the subscriber number, whatever the prefix


class _Tx(Protocol):
    def run(self, statement: str, params: Mapping[str, Any] | None = None) -> int: ...
    def all(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Any]: ...


@dataclass(frozen=True)
class Forgotten:
    """What ``forget`` erased: the leads (by id) and how many rows of each kind."""

    lead_ids: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)


def same_phone(wanted: str, text: str) -> bool:
    """Whether ``text`` holds the phone number ``wanted``, in any spelling (+1 (512) 555-0147, 5125550147)."""
    digits = _NOT_DIGIT.sub("", wanted)
    if len(digits) < 7:
        return False
    tail = digits[-_PHONE_TAIL:]
    for match in _PHONE_LIKE.finditer(text):
        found = _NOT_DIGIT.sub("", match.group())
        if found.endswith(tail) and (len(found) >= len(tail)):
            return True
    return False


def same_email(wanted: str, text: str) -> bool:
    lowered = text.lower()
    email = wanted.strip().lower()
    return bool(email) and (email in lowered or email.replace("@", "%40") in lowered)


class RetentionSql:
    """The retention and erasure methods of :class:`relay.store.sql.SqlStore`, in one place."""

    lock_rows: str
    _read: Callable[..., Any]
    _write: Callable[..., Any]

    def redact(self, older_than: Mapping[str, float], now: float) -> int:
        """Blank the personal data of leads of each status received before its cutoff; how many."""
        def write(tx: _Tx) -> int:
            total = 0
            for status, cutoff in sorted(older_than.items()):
                doomed = [row["id"] for row in tx.all(
                    "SELECT id FROM leads WHERE status = :status AND received_at < :cutoff"
                    f" AND redacted_at IS NULL{self.lock_rows}", {"status": status, "cutoff": cutoff})]
                for chunk, params in _chunks(doomed):
                    _blank(tx, chunk, {**params, "now": now})
                total += len(doomed)
            return total
        result: int = self._write(write)
        return result

    def redacted_at(self, lead_id: str) -> float | None:
        rows = self._read(lambda tx: tx.all("SELECT redacted_at FROM leads WHERE id = :id", {"id": lead_id}))
        return rows[0]["redacted_at"] if rows else None

    def take_turn(self, task: str, owner: str, interval_s: float, now: float) -> bool:
        """True for exactly one caller per ``interval_s`` across every process sharing the store."""
        def write(tx: _Tx) -> bool:
            tx.run("INSERT INTO maintenance (task, owner, run_at) VALUES (:task, '', 0)"
                   " ON CONFLICT (task) DO NOTHING", {"task": task})
            return tx.run("UPDATE maintenance SET owner = :owner, run_at = :now"
                          " WHERE task = :task AND run_at <= :due",
                          {"task": task, "owner": owner, "now": now, "due": now - interval_s}) == 1
        taken: bool = self._write(write)
        return taken

    def forget(self, *, phone: str | None = None, email: str | None = None) -> Forgotten:
        """Delete every lead that names this phone or email, with its attempts and dedupe keys."""
        if not phone and not email:
            return Forgotten()

        def names_them(text: str) -> bool:
            return bool((phone and same_phone(phone, text)) or (email and same_email(email, text)))

        def write(tx: _Tx) -> Forgotten:
            found = [row["id"] for row in tx.all(
                "SELECT id, body, query_string, headers_json, call_json, error_json, fetched_json,"
                f" response_body, dedupe_key FROM leads{self.lock_rows}") if names_them(_texts(row))]
            found += [row["lead_id"] for row in tx.all("SELECT lead_id, response_body FROM attempts")
                      if row["response_body"] and names_them(row["response_body"])]
            lead_ids = tuple(sorted(set(found)))
            counts = {"leads": 0, "attempts": 0, "dedupe_keys": 0}
            for chunk, params in _chunks(list(lead_ids)):
                counts["attempts"] += tx.run(f"DELETE FROM attempts WHERE lead_id IN {chunk}", params)
                counts["dedupe_keys"] += tx.run(f"DELETE FROM dedupe_keys WHERE lead_id IN {chunk}", params)
                counts["leads"] += tx.run(f"DELETE FROM leads WHERE id IN {chunk}", params)
            return Forgotten(lead_ids, counts)
        forgotten: Forgotten = self._write(write)
        return forgotten


def _blank(tx: _Tx, chunk: str, params: dict[str, Any]) -> None:
    tx.run("UPDATE leads SET body = :empty, query_string = '', headers_json = '{}', client_addr = '',"
           " call_json = NULL, error_json = NULL, fetched_json = NULL, response_body = NULL,"
           f" dedupe_key = NULL, redacted_at = :now WHERE id IN {chunk}", {**params, "empty": b""})
    tx.run(f"UPDATE attempts SET response_body = NULL WHERE lead_id IN {chunk}", params)
    tx.run(f"DELETE FROM dedupe_keys WHERE lead_id IN {chunk}", params)


def _texts(row: Mapping[str, Any]) -> str:
    body = row["body"]
    if isinstance(body, memoryview):
        body = body.tobytes()
    parts: Iterable[Any] = (body.decode("utf-8", "replace") if isinstance(body, bytes) else body,
                            row["query_string"], row["headers_json"], row["call_json"], row["error_json"],
                            row["fetched_json"], row["response_body"], row["dedupe_key"])
    text = "\n".join(part for part in parts if isinstance(part, str))
    # Queries and form bodies spell a phone or an email percent-encoded: +1+555... or ann%40...
    return f"{text}\n{unquote_plus(text)}"


def _chunks(ids: list[str]) -> Iterable[tuple[str, dict[str, Any]]]:
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        names = [f"id{index}" for index in range(len(part))]
        yield f"({', '.join(':' + name for name in names)})", dict(zip(names, part, strict=True))
