"""Sends one mapped call to Trackdrive and says how it went, without raising.

Secrets are substituted here and nowhere else. The resolved URL carries the
``lead_token`` in its query, so neither the URL nor a requests exception text
(which quotes it) ever reaches an outcome or a log line.
"""
from __future__ import annotations

import logging
from importlib import metadata
from typing import Mapping
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from relay.delivery.outcome import Failed, Outcome, RetryLater, classify, truncate_body
from relay.errors import SourceMisconfigured
from relay.mapping.model import MASK, TrackdriveCall

log = logging.getLogger("relay.delivery")


def relay_version() -> str:
    try:
        return metadata.version("trackdrive-relay")
    except metadata.PackageNotFoundError:
        return "0.0.0"


USER_AGENT = f"trackdrive-relay/{relay_version()}"


class QueryRedactingFilter(logging.Filter):
    """Cuts query strings out of urllib3's debug lines, which quote the full request target."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_strip_query(arg) for arg in record.args)
        return True


def _strip_query(value: object) -> object:
    if isinstance(value, str) and "?" in value:
        return value.split("?", 1)[0] + "?[redacted]"
    return value


def _guard_urllib3_logs() -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, QueryRedactingFilter) for f in logger.filters):
        logger.addFilter(QueryRedactingFilter())


class TrackdriveClient:
    def __init__(self, default_base_url: str, *, connect_timeout_s: float = 3.05,
                 read_timeout_s: float = 15.0, pool_size: int = 32,
                 env: Mapping[str, str] | None = None) -> None:
        self.default_base_url = default_base_url
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.env: Mapping[str, str] = {} if env is None else env
        self.session = _build_session(pool_size)
        _guard_urllib3_logs()

    def send(self, call: TrackdriveCall, *, lead_id: str, timeout_s: float | None = None) -> Outcome:
        try:
            url, query, body = call.resolve(self.env, self.default_base_url)
        except SourceMisconfigured as exc:
            # Not the lead's fault: it waits until the operator sets the variable.
            return RetryLater("missing_secret", None, exc.message, None)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            return Failed("bad_call", None, f"the stored call cannot be resolved: {type(exc).__name__}")
        secret_values = [self.env[name] for name in call.secrets.values() if self.env.get(name)]
        try:
            response = self.session.request(
                call.method, url, params=query, json=body or None, headers=self._headers(lead_id),
                timeout=self._timeout(timeout_s), allow_redirects=False)
        except requests.RequestException as exc:
            return _outcome_for_exception(exc, url)
        except Exception as exc:  # a send must never raise into the dispatcher
            log.warning("unexpected error sending to %s: %s", _host(url),
                        type(exc).__name__, extra={"lead_id": lead_id})
            return RetryLater("error", None, type(exc).__name__, None)
        text = _scrub(truncate_body(response.text), secret_values)
        return classify(response.status_code, text, response.headers)

    def close(self) -> None:
        self.session.close()

    def _headers(self, lead_id: str) -> dict[str, str]:
        return {"Idempotency-Key": lead_id, "X-Relay-Lead-Id": lead_id,
                "User-Agent": USER_AGENT, "Accept": "application/json"}

    def _timeout(self, timeout_s: float | None) -> tuple[float, float]:
        if timeout_s is None:
            return (self.connect_timeout_s, self.read_timeout_s)
        return (min(self.connect_timeout_s, timeout_s), timeout_s)


def _build_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    # Retries belong to the outbox, which records each attempt; the adapter makes none.
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.trust_env = False
    return session


def _outcome_for_exception(exc: requests.RequestException, url: str) -> Outcome:
    where = _host(url)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return RetryLater("connection_error", None, f"connect timeout to {where}", None)
    if isinstance(exc, requests.exceptions.Timeout):
        # The lead may have been created all the same; the Idempotency-Key covers a resend.
        return RetryLater("timeout", None, f"read timeout from {where}", None)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return RetryLater("connection_error", None, f"connection to {where} failed", None)
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        return Failed("invalid_url", None, f"invalid Trackdrive URL {where}")
    return RetryLater("error", None, f"{type(exc).__name__} sending to {where}", None)


def _host(url: str) -> str:
    # Only scheme and host: the query holds the lead_token and the path may hold a caller_id.
    try:
        parts = urlsplit(url)
    except ValueError:
        return "an unparsable URL"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{netloc}" if parts.scheme else "a URL without a scheme"


def _scrub(text: str, secret_values: list[str]) -> str:
    # Trackdrive may echo parameters back; a token must not land in the outbox through it.
    for value in secret_values:
        if value:
            text = text.replace(value, MASK)
    return text

