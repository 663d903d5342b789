"""What of a vendor request is kept with the lead: no credential ever reaches the outbox."""
from __future__ import annotations

from typing import Iterable
from urllib.parse import unquote_plus

from relay.mapping.model import MASK, InboundSettings

KEPT_HEADERS = ("Content-Type", "User-Agent", "X-Forwarded-For", "X-Request-ID", "Idempotency-Key")
# Kept by name only: that a request was signed is worth knowing, the signature is not.
SIGNATURE_HEADERS = ("X-Hub-Signature", "X-Hub-Signature-256", "Typeform-Signature", "X-Signature")


def credential_headers(inbound: InboundSettings) -> list[str]:
    names = list(SIGNATURE_HEADERS)
    if inbound.hmac:
        names.append(inbound.hmac.header)
    if inbound.token and inbound.token.header:
        names.append(inbound.token.header)
    if inbound.basic:
        names.append("Authorization")
    return names


def kept_headers(received: Iterable[tuple[str, str]], inbound: InboundSettings) -> dict[str, str]:
    """The allow-listed headers under their usual spelling; credential values masked."""
    spelling = {name.lower(): name for name in KEPT_HEADERS}
    masked = {name.lower(): name for name in credential_headers(inbound)}
    kept: dict[str, str] = {}
    for name, value in received:
        lowered = name.lower()
        if lowered in masked:
            kept[masked[lowered]] = MASK
        elif lowered in spelling:
            key = spelling[lowered]
            kept[key] = f"{kept[key]}, {value}" if key in kept else value
    return kept


def query_without(query: str, parameter: str | None) -> str:
    """The raw query string minus one parameter (a credential), other bytes untouched."""
    if not parameter or not query:
        return query
    parts = [part for part in query.split("&")
             if unquote_plus(part.partition("=")[0]) != parameter]
    return "&".join(parts)
