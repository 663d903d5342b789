"""What of a vendor request is kept with the lead: no credential ever reaches the outbox."""
from __future__ import annotations

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
    credentials = {name.lower(): name for name in credential_headers(inbound)}
    kept = {name: MASK for name in credentials.values() if header_value(environ, name) is not None}
    for name in (*KEPT_HEADERS, *also):
        value = header_value(environ, name)
        if value is not None and name.lower() not in credentials:
            kept[name] = value
    return kept


def header_value(environ: Mapping[str, Any], name: str) -> str | None:
    """A header as WSGI holds it: ``X-Api-Key`` under ``HTTP_X_API_KEY``."""
    key = name.upper().replace("-", "_")
    if key in BODY_ENVIRON_KEYS:
        return environ.get(key) or None  # an empty Content-Type is no header at all
    return environ.get(f"HTTP_{key}")


def query_without(query: str, parameter: str | None) -> str:
    """The raw query string minus one parameter (a credential), other bytes untouched."""
    if not parameter or not query:
        return query
    parts = [part for part in query.split("&")
             if unquote_plus(part.partition("=")[0]) != parameter]
    return "&".join(parts)
