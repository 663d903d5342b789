"""What one delivery attempt came to, as a value.

Trackdrive documents no responses, so :func:`classify` reads an answer as
loosely as the known facts allow (see ``docs/trackdrive-notes.md``): only a 2xx
counts as delivered, transient statuses are retried, and every other answer is
a final failure that an operator has to look at.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Callable, Mapping

MAX_BODY_BYTES = 64 * 1024
TRANSIENT_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class Delivered:
    status: int
    body: str


@dataclass(frozen=True)
class RetryLater:
    reason: str
    status: int | None
    body: str
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Failed:
    reason: str
    status: int | None
    body: str


Outcome = Delivered | RetryLater | Failed


def truncate_body(body: str, limit: int = MAX_BODY_BYTES) -> str:
    """The body cut to ``limit`` UTF-8 bytes, never splitting a character."""
    encoded = body.encode("utf-8", errors="replace")
    if len(encoded) <= limit:
        return body
    return encoded[:limit].decode("utf-8", errors="ignore")


def classify(status: int, body: str, headers: Mapping[str, str], *,
             now: Callable[[], float] = time.time) -> Outcome:
    """Turn one HTTP answer from Trackdrive into an :data:`Outcome`."""
    body = truncate_body(body)
    if 200 <= status < 300:
        if _says_unsuccessful(body):
            return Failed("rejected", status, body)
        return Delivered(status, body)
    if status in TRANSIENT_STATUSES or status >= 500:
        retry_after = parse_retry_after(_header(headers, "Retry-After"), now())
        return RetryLater(_transient_reason(status), status, body, retry_after)
    return Failed(_failure_reason(status), status, body)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until_http_date(value, now)
    if seconds is None or seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _seconds_until_http_date(value: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return when.timestamp() - now


def _says_unsuccessful(body: str) -> bool:
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("success") is False


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def _transient_reason(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status == 408:
        return "request_timeout"
    return "server_error"


def _failure_reason(status: int) -> str:
    if status in (401, 403):
        # An account or IP setting is wrong: retrying cannot help, an operator must act.
        return "unauthorized"
    if 300 <= status < 400:
        return "redirected"
    if 400 <= status < 500:
        return "rejected"
    return "unexpected_status"
