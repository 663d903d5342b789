"""A recorded vendor request as the vendor would send it to a relay configured for it.

Recorded requests are byte copies of what each vendor sends; the shared key a vendor is set up
with (in its webhook URL or a custom header) is not in every recording, so it is added here from
the made-up secrets of ``SHIPPED_SECRETS``, exactly where the vendor's settings would put it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from relay.mapping.httpfile import parse_http_file
from tests.support.stack import SHIPPED_SECRETS

# source -> (query parameter, secret name): the key given in the webhook URL set at the vendor.
URL_KEYS = {
    "jotform": ("key", "JOTFORM_WEBHOOK_KEY"),
    "elementor-basic": ("key", "ELEMENTOR_WEBHOOK_KEY"),
    "elementor-advanced": ("key", "ELEMENTOR_WEBHOOK_KEY"),
    "leadconduit": ("key", "LEADCONDUIT_WEBHOOK_KEY"),
}
# source -> (header, secret name): the custom request header set at the vendor.
HEADER_KEYS = {
    "gravity-forms": ("X-Api-Key", "GRAVITY_FORMS_API_KEY"),
}
DROPPED_HEADERS = ("host", "content-length")


@dataclass(frozen=True)
class VendorRequest:
    method: str
    query: str
    headers: dict[str, str]
    body: bytes

    def url(self, base_url: str, source: str) -> str:
        return f"{base_url}/hooks/{source}" + (f"?{self.query}" if self.query else "")


def vendor_request(source: str, fixture: Path) -> VendorRequest:
    recorded = parse_http_file(fixture.read_bytes())
    headers = {k: v for k, v in recorded.headers.items() if k.lower() not in DROPPED_HEADERS}
    query = recorded.query
    if source in URL_KEYS:
        name, secret = URL_KEYS[source]
        query = "&".join(part for part in (query, urlencode({name: SHIPPED_SECRETS[secret]})) if part)
    if source in HEADER_KEYS:
        name, secret = HEADER_KEYS[source]
        headers[name] = SHIPPED_SECRETS[secret]
    body = recorded.body
    if (recorded.content_type or "").lower().startswith("multipart/") and b"\r\n" not in body:
        body = body.replace(b"\n", b"\r\n")  # recorded with LF; multipart is CRLF on the wire
    return VendorRequest(recorded.method, query, headers, body)
