"""The leads filter as the console's pages and forms spell it, read and checked in one place.

A bad value is a 400 naming the parameter and the rule, never a 500.
"""
from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass, replace
from typing import Mapping
from urllib.parse import urlencode

from relay.errors import BadRequest
from relay.mapping.transforms import TransformError, compile_transform
from relay.outcomes import LEAD_STATUSES
from relay.store.base import LeadQuery
from relay.store.rows import normal_email

FILTER_FIELDS = ("source", "status", "since", "until", "q")
_PHONE = compile_transform("phone", None)


@dataclass(frozen=True)
class LeadFilter:
    """What the operator typed (to show it back and to carry it in links) and the store query."""

    given: dict[str, str]
    query: LeadQuery

    def args(self, **extra: str) -> str:
        return urlencode({**{k: v for k, v in self.given.items() if v}, **extra})

    def describe(self) -> str:
        return " ".join(f"{key}={value}" for key, value in self.given.items() if value) or "every lead"


def read_filter(args: Mapping[str, str]) -> LeadFilter:
    given = {name: (args.get(name) or "").strip() for name in FILTER_FIELDS}
    source = given["source"] or None
    status = given["status"] or None
    if status is not None and status not in LEAD_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(LEAD_STATUSES)}", field="status", rule="enum")
    if source is not None and len(source) > 200:
        raise BadRequest("source is too long", field="source", rule="length")
    query = LeadQuery(source=source, status=status, since=parse_time(given["since"], "since"),
                      until=parse_time(given["until"], "until"))
    return LeadFilter(given, contact_query(query, given["q"]))


def contact_query(query: LeadQuery, text: str) -> LeadQuery:
    """A search for a phone or an email matches the normalised value stored with each lead."""
    if not text:
        return query
    if "@" in text:
        email = normal_email(text)
        return replace(query, email=email)
    try:
        phone = _PHONE(text)
    except TransformError as exc:
        raise BadRequest(f"q: {exc.message}; search by a phone number or an email address",
                         field="q", rule="phone_or_email") from None
    return replace(query, caller_id=str(phone))


def parse_time(text: str, name: str) -> float | None:
    """YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] in UTC (or with an offset), or epoch seconds."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD), a time (YYYY-MM-DDTHH:MM, UTC) or epoch "
                         "seconds", field=name, rule="time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def parse_cursor(text: str) -> tuple[float, str] | None:
    """The keyset position ``<received_at>_<id>`` of the last lead on the previous page."""
    if not text:
        return None
    at, _, lead_id = text.partition("_")
    try:
        value = float(at)
    except ValueError:
        value = float("nan")
    if value != value or not lead_id or len(lead_id) > 64:
        raise BadRequest("after must be the <received_at>_<id> the previous page links to",
                         field="after", rule="cursor")
    return value, lead_id


def parse_zone(text: str) -> str:
    zone = text.strip() or "UTC"
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"tz must be an IANA time zone such as UTC or America/Chicago, not {zone!r}",
                         field="tz", rule="time_zone") from None
    return zone
