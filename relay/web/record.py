"""What of a vendor request is kept with the lead: no credential ever reaches the outbox."""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping
from urllib.parse import unquote_plus

from relay.mapping.model import MASK, InboundSettings

KEPT_HEADERS = ("Content-Type", "User-Agent", "X-Forwarded-For", "X-Request-ID", "Idempotency-Key")
# Kept by name only: that a request was signed is worth knowing, the signature is not.
SIGNATURE_HEADERS = ("X-Hub-Signature", "X-Hub-Signature-256", "Typeform-Signature", "X-Signature",
                     "Stripe-Signature", "X-Slack-Signature", "X-Shopify-Hmac-Sha256", "Tally-Signature",
                     "X-HubSpot-Signature", "X-HubSpot-Signature-v3", "webhook-signature")
BODY_ENVIRON_KEYS = ("CONTENT_TYPE", "CONTENT_LENGTH")  # the two headers WSGI keeps without HTTP_


def credential_headers(inbound: InboundSettings) -> list[str]:
    names = list(SIGNATURE_HEADERS)
    if inbound.hmac:
        names.append(inbound.hmac.header)
    if inbound.signature:
        names.append(inbound.signature.header)
    if inbound.token and inbound.token.header:
        names.append(inbound.token.header)
    if inbound.basic:
        names.append("Authorization")
    return names


def kept_headers(environ: Mapping[str, Any], inbound: InboundSettings,
                 also: tuple[str, ...] = ()) -> dict[str, str]:
    """The allow-listed headers, plus ``also`` (a source's dedupe key header), under their
    usual spelling; credential values masked.

    Read from the WSGI environ by name: a request carries many headers and keeps few. A
    header the mapping reads must be kept, or replaying the stored request would read
    something else than the live request did.
    """
    kept: dict[str, str] = {}
    for environ_key, name, masked in header_plan(inbound, also):
        value = environ.get(environ_key)
        if value:
            kept[name] = MASK if masked else value
    return kept


def header_plan(inbound: InboundSettings, also: tuple[str, ...]) -> tuple[tuple[str, str, bool], ...]:
    """(environ key, header name, masked) for each header worth keeping; worked out once per source."""
    try:
        return _cached_plan(inbound, also)
    except TypeError:  # settings holding something unhashable: work it out each time
        return _plan(inbound, also)


def _plan(inbound: InboundSettings, also: tuple[str, ...]) -> tuple[tuple[str, str, bool], ...]:
    credentials = {name.lower(): name for name in credential_headers(inbound)}
    plan = [(environ_key(name), name, True) for name in credentials.values()]
    plan += [(environ_key(name), name, False) for name in dict.fromkeys((*KEPT_HEADERS, *also))
             if name.lower() not in credentials]
    return tuple(plan)


_cached_plan = lru_cache(maxsize=256)(_plan)


def environ_key(name: str) -> str:
    """Where WSGI holds a header: ``X-Api-Key`` under ``HTTP_X_API_KEY``."""
    key = name.upper().replace("-", "_")
    return key if key in BODY_ENVIRON_KEYS else f"HTTP_{key}"


def query_without(query: str, parameter: str | None) -> str:
    """The raw query string minus one parameter (a credential), other bytes untouched."""
    if not parameter or not query:
        return query
    parts = [part for part in query.split("&")
             if unquote_plus(part.partition("=")[0]) != parameter]
    return "&".join(parts)
