"""Read a recorded vendor request from a ``.http`` file.

The format is the one of ``tests/payloads`` and ``mappings/fixtures``::

    # comment lines
    POST {{base_url}}/hooks/acme HTTP/1.1
    Host: {{host}}
    Content-Type: application/json

    {"phone": "5125550147"}

The body is every byte after the blank line up to, but not including, the
file's final newline: signatures in the headers are computed over exactly
those bytes, so the body is never decoded or re-encoded here.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from relay.mapping.model import InboundRequest

DEFAULT_BASE_URL = "http://relay.local"


class HttpFileError(ValueError):
    """The file is not a request in the ``.http`` format."""


def parse_http_file(data: bytes, *, base_url: str = DEFAULT_BASE_URL) -> InboundRequest:
    head, body = _split_head_and_body(data)
    lines = [line for line in head if line.strip() and not line.lstrip().startswith(b"#")]
    if not lines:
        raise HttpFileError("no request line (expected 'METHOD URL HTTP/1.1')")
    method, url = _request_line(_text(lines[0], base_url))
    headers = _headers([_text(line, base_url) for line in lines[1:]])
    return InboundRequest(
        method=method,
        content_type=_header(headers, "Content-Type"),
        body=body,
        query=urlsplit(url).query,
        headers=headers,
    )


def _split_head_and_body(data: bytes) -> tuple[list[bytes], bytes]:
    """Head lines up to the first blank line after the request line, and the body bytes."""
    head: list[bytes] = []
    seen_request_line = False
    position = 0
    while position < len(data):
        end = data.find(b"\n", position)
        if end == -1:
            end = len(data)
        line = data[position:end].rstrip(b"\r")
        position = end + 1
        if seen_request_line and not line.strip():
            return head, _without_final_newline(data[position:])
        head.append(line)
        if line.strip() and not line.lstrip().startswith(b"#"):
            seen_request_line = True
    return head, b""


def _without_final_newline(body: bytes) -> bytes:
    if body.endswith(b"\r\n"):
        return body[:-2]
    if body.endswith(b"\n"):
        return body[:-1]
    return body


def _text(line: bytes, base_url: str) -> str:
    host = urlsplit(base_url).netloc
    text = line.decode("utf-8")
    return text.replace("{{base_url}}", base_url.rstrip("/")).replace("{{host}}", host)


def _request_line(line: str) -> tuple[str, str]:
    parts = line.split()
    if len(parts) not in (2, 3) or not parts[0].isalpha():
        raise HttpFileError(f"bad request line {line!r} (expected 'METHOD URL HTTP/1.1')")
    return parts[0].upper(), parts[1]


def _headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise HttpFileError(f"bad header line {line!r} (expected 'Name: value')")
        headers[name.strip()] = value.strip()
    return headers


def _header(headers: dict[str, str], name: str) -> str:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), "")


def guess_content_type(body: bytes) -> str:
    """A content type for a raw body given without one: JSON, a form, or plain text."""
    text = body.lstrip()
    if text[:1] in (b"{", b"["):
        return "application/json"
    first_pair = text.split(b"&", 1)[0]
    if b"=" in first_pair and b" " not in first_pair and b"\n" not in first_pair:
        return "application/x-www-form-urlencoded"
    return "text/plain"
