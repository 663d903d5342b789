"""Reconciliation: per source and day (in a chosen time zone), what came in and what became of it.

One table for the console's page, its CSV and ``relay outbox report --by day``, all
built from :meth:`relay.store.base.Store.daily_counts`, so they cannot disagree.

* received: every lead the vendor sent, repeats included (stored leads + duplicates)
* accepted: stored leads that were taken on (queued, fetching, retry, delivered, dead)
* refused: the mapping refused them (rejected); dropped: a drop rule matched
* duplicates: repeats of a live lead, answered with the first one's status, not stored
* delivered, dead: where accepted leads are now; pending: still on their way
"""
from __future__ import annotations

import csv
import datetime
import io
import zoneinfo
from dataclasses import dataclass
from typing import Iterable

from relay.store.base import PENDING_STATUSES, Count, Store

COLUMNS = ("received", "accepted", "refused", "dropped", "duplicates", "delivered", "dead", "pending")
TOTAL = "total"


@dataclass(frozen=True)
class ReportRow:
    day: str  # YYYY-MM-DD in the report's zone, or "total"
    source: str  # a source, or "total"
    values: dict[str, int]


def reconcile(counts: Iterable[Count]) -> list[ReportRow]:
    """One row per (day, source), then a total per source and a grand total, all days."""
    by_key: dict[tuple[str, str], dict[str, int]] = {}
    for count in counts:
        statuses = by_key.setdefault((count.day, count.source), {})
        statuses[count.status] = statuses.get(count.status, 0) + count.count
    rows = [ReportRow(day, source, columns_of(statuses)) for (day, source), statuses in sorted(by_key.items())]
    totals: dict[str, dict[str, int]] = {}
    for row in rows:
        for key in (row.source, TOTAL):
            total = totals.setdefault(key, dict.fromkeys(COLUMNS, 0))
            for column in COLUMNS:
                total[column] += row.values[column]
    sources = sorted(name for name in totals if name != TOTAL)
    return [*rows, *(ReportRow(TOTAL, name, totals[name]) for name in sources),
            ReportRow(TOTAL, TOTAL, totals.get(TOTAL, dict.fromkeys(COLUMNS, 0)))]


def columns_of(statuses: dict[str, int]) -> dict[str, int]:
    stored = sum(count for status, count in statuses.items() if status != "duplicate")
    refused, dropped = statuses.get("rejected", 0), statuses.get("dropped", 0)
    duplicates = statuses.get("duplicate", 0)
    return {"received": stored + duplicates, "accepted": stored - refused - dropped, "refused": refused,
            "dropped": dropped, "duplicates": duplicates, "delivered": statuses.get("delivered", 0),
            "dead": statuses.get("dead", 0),
            "pending": sum(statuses.get(status, 0) for status in PENDING_STATUSES)}


def to_csv(rows: Iterable[ReportRow], zone: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["day", "source", *COLUMNS, "time_zone"])
    for row in rows:
        writer.writerow([row.day, row.source, *(row.values[column] for column in COLUMNS), zone])
    return out.getvalue()


def day_range(zone: str, first: datetime.date, last: datetime.date) -> tuple[float, float]:
    """Epoch seconds from the start of ``first`` to the end of ``last`` (inclusive) in ``zone``."""
    tz = zoneinfo.ZoneInfo(zone)
    start = datetime.datetime.combine(first, datetime.time(), tz).timestamp()
    end = datetime.datetime.combine(last + datetime.timedelta(days=1), datetime.time(), tz).timestamp()
    return start, end


def report(store: Store, zone: str, first: datetime.date, last: datetime.date) -> list[ReportRow]:
    """The reconciliation of the days ``first`` to ``last`` in ``zone``: one store query."""
    start, end = day_range(zone, first, last)
    return reconcile(store.daily_counts(zone, since=start, until=end))
