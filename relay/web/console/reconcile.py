"""Reconciliation by day in a chosen time zone, as a page and as CSV (the same as ``relay outbox report``)."""
from __future__ import annotations

import datetime
import zoneinfo

from flask import Response, render_template, request

from relay.errors import BadRequest
from relay.store.report import COLUMNS, ReportRow, report, to_csv
from relay.web.console import bp
from relay.web.console.filters import parse_zone
from relay.web.state import relay_state

DEFAULT_DAYS = 7
MAX_DAYS = 400


def local_days(zone: str) -> tuple[datetime.date, datetime.date]:
    """The first and last day (YYYY-MM-DD, inclusive) asked for; by default the last week in ``zone``."""
    today = datetime.datetime.now(zoneinfo.ZoneInfo(zone)).date()
    first = parse_day(request.args.get("since", ""), "since") or today - datetime.timedelta(days=DEFAULT_DAYS - 1)
    last = parse_day(request.args.get("until", ""), "until") or today
    if last < first or (last - first).days >= MAX_DAYS:
        raise BadRequest(f"until must be on or after since, at most {MAX_DAYS} days later", field="until",
                         rule="range")
    return first, last


def parse_day(text: str, name: str) -> datetime.date | None:
    if not text.strip():
        return None
    try:
        return datetime.date.fromisoformat(text.strip())
    except ValueError:
        raise BadRequest(f"{name} must be a day as YYYY-MM-DD", field=name, rule="date") from None


def report_rows() -> tuple[list[ReportRow], str, str, str]:
    zone = parse_zone(request.args.get("tz", ""))
    first, last = local_days(zone)
    return report(relay_state().store, zone, first, last), zone, first.isoformat(), last.isoformat()


@bp.get("/reconciliation")
def reconciliation() -> str:
    rows, zone, first, last = report_rows()
    return render_template("console/reconciliation.html", rows=rows, columns=COLUMNS, zone=zone,
                           since=first, until=last)


@bp.get("/reconciliation.csv")
def reconciliation_csv() -> Response:
    rows, zone, first, last = report_rows()
    response = Response(to_csv(rows, zone), content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="relay-{first}-to-{last}.csv"'
    return response
