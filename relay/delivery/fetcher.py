"""The real fetch stage: read a lead from the vendor's API, then map it.

A lead stored as ``fetching`` holds the vendor's notification only. The
:class:`Fetcher` finds the lead's source in the registry (so a reloaded mapping
applies to leads already stored), takes the lead's own part of the stored
request, renders the source's ``fetch:`` request, reads the vendor's answer and
classifies it as a value: a :class:`Resolution` when the lead could be read, a
:class:`RetryLater` for what may pass (429, 5xx, timeouts), a :class:`Failed`
for what will not (a refused token, a lead that does not exist).

The rendered URL and parameters hold tokens: nothing here logs them, and the
only thing kept from the exchange is the vendor's JSON answer.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Mapping, Protocol
from urllib.parse import urlsplit

from relay import metrics
from relay.delivery.outcome import Failed, RetryLater, parse_retry_after, truncate_body
from relay.delivery.ratelimit import TokenBucket
from relay.delivery.resolve import Resolution, Resolved
from relay.intake.pipeline import evaluate, map_lead, status_of
from relay.mapping import conditions
from relay.mapping.fetch import FetchSpec, MissingValue, fetched_payload
from relay.mapping.model import Drop, InboundRequest, Refusal, TrackdriveCall
from relay.mapping.source import Source
from relay.store.base import Lead

if TYPE_CHECKING:
    import requests

log = logging.getLogger("relay.delivery")

MAX_RESPONSE_BYTES = 1024 * 1024
DETAIL_CHARS = 300
RETRY_STATUSES = frozenset({408, 429})
EXPIRED_SUBCODES = {463: "expired", 460: "password changed", 467: "invalid", 458: "app not installed"}


class Sources(Protocol):
    def get(self, name: str) -> Source | None: ...


class Fetcher:
    """A :class:`~relay.delivery.resolve.LeadResolver` over the relay's live sources."""

    def __init__(self, sources: Sources, env: Mapping[str, str], *, pool_size: int = 16,
                 session: requests.Session | None = None) -> None:
        self.sources = sources
        self.env = env
        self._session = session
        self._pool_size = pool_size
        self._limits: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        _guard_urllib3_logs()

    @property
    def session(self) -> requests.Session:
        # Made, and requests imported, on the first fetch: a relay whose sources never fetch
        # keeps requests (about 4 MiB per worker) out of its processes.
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = _session(self._pool_size)
        return self._session

    def resolve(self, lead: Lead) -> Resolved:
        source = self.sources.get(lead.source)
        if source is None:
            return RetryLater("source_unavailable", None, f"no source {lead.source!r} is loaded")
        part = self._part_of(source, lead)
        if isinstance(part, Refusal):
            return _resolution(part, None, source.version)
        if source.fetch is None:  # the mapping no longer fetches: map what was stored
            return self._mapped(source, part, part, lead)
        return self._fetch(source, source.fetch, lead, part)

    def _part_of(self, source: Source, lead: Lead) -> Any:
        """The lead's own part of its stored request, as intake saw it."""
        request = InboundRequest(method=lead.method, content_type=lead.content_type, body=lead.body,
                                 query=lead.query, headers=lead.headers, client_addr=lead.client_addr)
        try:
            drafts = evaluate(source, request).drafts
        except Exception:  # the stored body no longer parses under this mapping
            return Refusal(source.name, "payload", "unreadable", "the stored notification cannot be read "
                           "by the current mapping")
        if lead.batch_index >= len(drafts):
            return Refusal(source.name, "split", "no_leads", f"the stored notification no longer holds "
                           f"lead {lead.batch_index + 1} under the current split path")
        draft = drafts[lead.batch_index]
        if isinstance(draft.outcome, Refusal):
            return draft.outcome
        return draft.payload

    def _fetch(self, source: Source, spec: FetchSpec, lead: Lead, part: Any) -> Resolved:
        try:
            request = spec.request(part, self.env)
        except MissingValue as missing:
            if missing.kind == "env":
                return RetryLater("secret_unset", None, f"environment variable {missing.name} is not set")
            return _resolution(Refusal(source.name, "fetch", "fetch_id_missing",
                                       f"the notification has no {missing.name}"), None, source.version)
        self._limit(source.name, spec.rate_per_s).acquire()
        vendor = urlsplit(request.url).netloc or "the vendor's API"
        session = self.session
        import requests  # loaded already by the session

        try:
            response = session.request(request.method, request.url, params=request.params,
                                            headers=request.headers, timeout=request.timeout_s,
                                            allow_redirects=False, stream=True)
        except requests.Timeout:
            return RetryLater("vendor_timeout", None, f"{vendor} did not answer within {spec.timeout_s:g}s")
        except requests.RequestException as exc:
            # Never the exception's text: it quotes the URL, and the URL holds the token.
            return RetryLater("vendor_unreachable", None, f"{vendor}: {type(exc).__name__}")
        with response:
            status, body = response.status_code, _read(response)
            headers = dict(response.headers)
        return self._classify(source, spec, lead, part, vendor, status, body, headers)

    def _classify(self, source: Source, spec: FetchSpec, lead: Lead, part: Any, vendor: str, status: int,
                  body: str, headers: Mapping[str, str]) -> Resolved:
        if 200 <= status < 300:
            try:
                fetched = json.loads(body)
            except ValueError:
                return Failed("vendor_bad_response", status, f"{vendor} answered {status} without JSON")
            return self._mapped(source, fetched_payload(fetched, part), fetched, lead)
        detail = vendor_detail(body)
        if status in RETRY_STATUSES or status >= 500:
            retry_after = parse_retry_after(_header(headers, "Retry-After"), time.time())
            reason = "vendor_rate_limited" if status == 429 else "vendor_error"
            return RetryLater(reason, status, truncate_body(body), retry_after)
        if status in (401, 403) or _graph_code(body) in (190, 10, 200):
            names = " and ".join(spec.token_envs) or "its credentials"
            return Failed("vendor_unauthorized", status,
                          f"{vendor} refused {names} ({detail}); renew or fix the variable, then retry")
        if status == 404 or _graph_code(body) == 100:
            return Failed("vendor_not_found", status,
                          f"{vendor} has no such lead, or not for this token ({detail})")
        return Failed("vendor_rejected", status, f"{vendor} answered {status} ({detail})")

    def _mapped(self, source: Source, payload: Any, fetched: Any, lead: Lead) -> Resolution:
        """The lead mapped as intake maps one: ``${ENV}`` conditions read the relay's environment,
        and a crash is as loud as at intake (traceback, lead id, metric), kept as mapping_error."""
        with conditions.environment(self.env):
            outcome, crash = map_lead(source, payload)
        if crash is not None:
            log.error("mapping for source %s crashed on fetched lead %s; it is stored as rejected for replay",
                      source.name, lead.id, exc_info=(type(crash), crash, crash.__traceback__),
                      extra={"source": source.name, "lead_id": lead.id, "event": "mapping_crash"})
            metrics.record_mapping_crash(source.name)
        return _resolution(outcome, fetched, source.version)

    def _limit(self, name: str, rate_per_s: float) -> TokenBucket:
        with self._lock:
            bucket = self._limits.get(name)
            if bucket is None or bucket.rate_per_s != rate_per_s:
                bucket = self._limits[name] = TokenBucket(rate_per_s)
            return bucket


def _resolution(outcome: TrackdriveCall | Refusal | Drop, fetched: Any, version: str) -> Resolution:
    call = outcome.to_dict() if isinstance(outcome, TrackdriveCall) else None
    error = None if call is not None else outcome.to_dict()
    return Resolution(status_of(outcome), call, error, fetched, version)


def vendor_detail(body: str) -> str:
    """What the vendor said went wrong, short: Graph API and HubSpot errors are read by name."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return truncate_body(body.strip(), DETAIL_CHARS) or "no details"
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):  # the Graph API
        error = parsed["error"]
        subcode = error.get("error_subcode")
        words = EXPIRED_SUBCODES.get(subcode) if isinstance(subcode, int) else None
        head = f"{error.get('type', 'error')} code {error.get('code')}"
        head += f" subcode {subcode}" if subcode is not None else ""
        head += f": {words}" if words else ""
        return f"{head}: {str(error.get('message', ''))[:DETAIL_CHARS]}"
    if isinstance(parsed, dict) and "message" in parsed:  # HubSpot and most others
        category = parsed.get("category")
        return (f"{category}: " if category else "") + str(parsed["message"])[:DETAIL_CHARS]
    return truncate_body(body.strip(), DETAIL_CHARS)


def _graph_code(body: str) -> int | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) else None


def _read(response: requests.Response) -> str:
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            break
    return b"".join(chunks)[:MAX_RESPONSE_BYTES].decode(response.encoding or "utf-8", errors="replace")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name.lower()), None)


def _session(pool_size: int) -> requests.Session:
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False  # no proxy or netrc credentials picked up from the environment
    return session


class QueryRedactingFilter(logging.Filter):
    """Cuts query strings out of the debug lines of urllib3 (under requests), which quote the full request target."""

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
