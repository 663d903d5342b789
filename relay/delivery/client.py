"""Sends one mapped call to Trackdrive and says how it went, without raising.

Secrets are substituted here and nowhere else. The resolved URL carries the
``lead_token`` in its query, so neither the URL nor an HTTP exception text
(which quotes it) ever reaches an outcome or a log line.

The call goes through relay.delivery.wire, a small kept-alive HTTP/1.1 client: on a
fast Trackdrive, requests and even urllib3 (which requests is built on) cost more CPU
per call than the exchange itself, for nothing the relay uses (no cookies, no auth
handlers, no redirects, no proxies from the environment).
"""
from __future__ import annotations

import json
import logging
import ssl
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Mapping
from urllib.parse import urlencode

import certifi

from relay.delivery.outcome import Failed, Outcome, RetryLater, classify, truncate_body
from relay.delivery.wire import Answer, Connections, Request, WireError, encode_request, where_of
from relay.errors import SourceMisconfigured
from relay.mapping.model import MASK, TrackdriveCall

log = logging.getLogger("relay.delivery")


def relay_version() -> str:
    try:
        return metadata.version("trackdrive-relay")
    except metadata.PackageNotFoundError:
        return "0.0.0"


USER_AGENT = f"trackdrive-relay/{relay_version()}"


@dataclass(frozen=True)
class Prepared:
    """A call resolved for the wire; its URL holds the lead token, so it is never logged."""

    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]
    connect_timeout_s: float
    read_timeout_s: float
    secret_values: tuple[str, ...]  # masked out of whatever Trackdrive echoes back

    def encoded(self) -> Request:
        """The request's bytes; WireError when the URL or a header cannot be sent."""
        return encode_request(self.method, self.url, body=self.body, headers=self.headers)


class TrackdriveClient:
    def __init__(self, default_base_url: str, *, connect_timeout_s: float = 3.05,
                 read_timeout_s: float = 15.0, pool_size: int = 32,
                 env: Mapping[str, str] | None = None) -> None:
        self.default_base_url = default_base_url
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.env: Mapping[str, str] = {} if env is None else env
        # Certificates are checked against certifi's bundle, the one requests uses.
        self.connections = Connections(max_idle=pool_size, tls=ssl.create_default_context(cafile=certifi.where()))

    def send(self, call: TrackdriveCall, *, lead_id: str, timeout_s: float | None = None) -> Outcome:
        prepared = self.prepare(call, lead_id=lead_id, timeout_s=timeout_s)
        if not isinstance(prepared, Prepared):
            return prepared
        try:
            answer = self.connections.request(prepared.method, prepared.url, body=prepared.body,
                                              headers=prepared.headers,
                                              connect_timeout_s=prepared.connect_timeout_s,
                                              read_timeout_s=prepared.read_timeout_s)
        except WireError as exc:
            return self.outcome_of(prepared, exc)
        except Exception as exc:  # a send must never raise into the dispatcher
            log.warning("unexpected error sending to %s: %s", where_of(prepared.url),
                        type(exc).__name__, extra={"lead_id": lead_id})
            return RetryLater("error", None, type(exc).__name__, None)
        return self.outcome_of(prepared, answer)

    def prepare(self, call: TrackdriveCall, *, lead_id: str,
                timeout_s: float | None = None) -> Prepared | Outcome:
        """The call ready to go on the wire, or the outcome of a call that cannot be made."""
        try:
            url, query, body = call.resolve(self.env, self.default_base_url)
        except SourceMisconfigured as exc:
            # Not the lead's fault: it waits until the operator sets the variable.
            return RetryLater("missing_secret", None, exc.message, None)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            return Failed("bad_call", None, f"the stored call cannot be resolved: {type(exc).__name__}")
        headers = self._headers(lead_id)
        payload = None
        if body:
            payload = json.dumps(body, allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        connect_s, read_s = self._timeouts(timeout_s)
        secret_values = tuple(self.env[name] for name in call.secrets.values() if self.env.get(name))
        return Prepared(call.method, _with_query(url, query), payload, headers, connect_s, read_s,
                        secret_values)

    def outcome_of(self, prepared: Prepared, result: Answer | WireError) -> Outcome:
        """What Trackdrive's answer (or the lack of one) means for the lead."""
        if isinstance(result, WireError):
            return _outcome_for_error(result)
        text = _scrub(truncate_body(_text_of(result)), prepared.secret_values)
        return classify(result.status, text, result.headers)

    def close(self) -> None:
        self.connections.close()

    def _headers(self, lead_id: str) -> dict[str, str]:
        return {"Idempotency-Key": lead_id, "X-Relay-Lead-Id": lead_id,
                "User-Agent": USER_AGENT, "Accept": "application/json"}

    def _timeouts(self, timeout_s: float | None) -> tuple[float, float]:
        if timeout_s is None:
            return self.connect_timeout_s, self.read_timeout_s
        return min(self.connect_timeout_s, timeout_s), timeout_s


def _with_query(url: str, query: Mapping[str, Any]) -> str:
    if not query:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode(query, doseq=True)}"


def _text_of(response: Answer) -> str:
    charset = _charset_of(response.headers.get("content-type", ""))
    try:
        return response.body.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return response.body.decode("utf-8", errors="replace")


def _charset_of(content_type: str) -> str:
    # A split, not email.message: this runs for every answer, and the parameter is all we read.
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').strip("'") or "utf-8"
    return "utf-8"


def _outcome_for_error(exc: WireError) -> Outcome:
    if exc.kind == "connect":
        return RetryLater("connection_error", None, f"connection to {exc.where} failed", None)
    if exc.kind == "connect_timeout":
        return RetryLater("connection_error", None, f"connect timeout to {exc.where}", None)
    if exc.kind == "timeout":
        # The lead may have been created all the same; the Idempotency-Key covers a resend.
        return RetryLater("timeout", None, f"read timeout from {exc.where}", None)
    if exc.kind == "protocol":
        return RetryLater("connection_error", None, f"connection to {exc.where} failed", None)
    if exc.kind == "invalid_url":
        return Failed("invalid_url", None, f"invalid Trackdrive URL {exc.where}")
    return Failed("bad_call", None, f"the call cannot be sent to {exc.where}: {exc.kind}")


def _scrub(text: str, secret_values: tuple[str, ...]) -> str:
    # Trackdrive may echo parameters back; a token must not land in the outbox through it.
    for value in secret_values:
        if value:
            text = text.replace(value, MASK)
    return text
