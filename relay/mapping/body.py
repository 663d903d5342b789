"""Turn a received request into the payload a mapping reads.

Vendors send JSON (in any Unicode encoding, sometimes labelled text/plain or not
labelled at all), form posts, multipart forms, XML (SOAP included, read by
:mod:`relay.mapping.xmlbody`) and bare query strings. All of them become one
dict: query parameters first, body fields overriding them.
Any bytes that cannot be read give a 400 ``MalformedBody`` or a 415
``UnsupportedMediaType``, never another exception.
"""
from __future__ import annotations

import codecs
import json
import math
import re
from typing import Any, Iterable
from urllib.parse import parse_qsl

from relay.errors import FilesRefused, MalformedBody, RelayError, UnsupportedMediaType
from relay.mapping import multipart
from relay.mapping.model import InboundRequest
from relay.mapping.xmlbody import looks_like_xml, xml_fields

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
JSON_TYPES = frozenset({"application/json", "text/json", "application/x-json", "application/jsonrequest"})
XML_TYPES = frozenset({"application/xml", "text/xml"})  # and every */*+xml, SOAP 1.2's included
SNIFFED_TYPES = frozenset({"", "text/plain", "application/octet-stream"})
# Longest first: the UTF-32 little-endian BOM starts with the UTF-16 one.
_BOMS = ((codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF32_LE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_BE, "utf-16"), (codecs.BOM_UTF16_LE, "utf-16"))
MAX_FIELDS = 10_000


def parse_request(request: InboundRequest, *, files: str = "ignore") -> dict[str, Any]:
    content_type = request.content_type or ""
    try:
        payload = _query_fields(request.query)
        if request.body and request.body.strip():
            payload.update(_body_fields(request.body, content_type, files))
        return payload
    except RelayError:
        raise
    except Exception as error:  # a parser surprise on hostile bytes is still the sender's fault
        raise MalformedBody(f"unreadable body: {type(error).__name__}", content_type=content_type or None) from None


def _query_fields(query: str) -> dict[str, Any]:
    if not query:
        return {}
    pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True, encoding="utf-8", errors="replace",
                      max_num_fields=MAX_FIELDS)
    return _collect(pairs)


def _collect(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Keys seen once hold a str; repeated keys hold a list of str in order."""
    fields: dict[str, Any] = {}
    for key, value in pairs:
        if key not in fields:
            fields[key] = value
        elif isinstance(fields[key], list):
            fields[key].append(value)
        else:
            fields[key] = [fields[key], value]
    return fields


def split_content_type(header: str) -> tuple[str, dict[str, str]]:
    """("type/subtype", {param: value}) with the type lowercased; quotes removed."""
    mime, _, rest = header.partition(";")
    params: dict[str, str] = {}
    for item in rest.split(";"):
        name, sep, value = item.partition("=")
        if sep:
            params[name.strip().lower()] = value.strip().strip('"')
    return mime.strip().lower(), params


def _body_fields(body: bytes, content_type: str, files: str) -> dict[str, Any]:
    mime, params = split_content_type(content_type)
    if mime in JSON_TYPES or mime.endswith("+json"):
        return _json_fields(body, content_type, params.get("charset"))
    if mime in XML_TYPES or mime.endswith("+xml"):
        return xml_fields(body, content_type)
    if mime == FORM:
        return _form_fields(body, content_type, params.get("charset"))
    if mime == MULTIPART:
        return _multipart_fields(body, content_type, params, files)
    if mime in SNIFFED_TYPES:
        return _sniffed_fields(body, content_type, params.get("charset"))
    raise UnsupportedMediaType(f"cannot read a {mime} body; send JSON, XML, a form or multipart form data",
                               content_type=content_type)


def _sniffed_fields(body: bytes, content_type: str, charset: str | None) -> dict[str, Any]:
    try:
        text = _decode(body, charset, content_type).lstrip()
    except MalformedBody:
        text = ""
    if text[:1] in ("{", "["):
        return _json_fields(body, content_type, charset)
    if looks_like_xml(text):
        return xml_fields(body, content_type)
    if "=" in text and not any(c.isspace() for c in text.strip()):
        return _form_fields(body, content_type, charset)
    label = content_type or "an unlabelled"
    raise UnsupportedMediaType(f"cannot read {label} body: it is neither JSON, XML nor form data",
                               content_type=content_type or None)


# --- JSON ---

def _json_fields(body: bytes, content_type: str, charset: str | None) -> dict[str, Any]:
    text = _decode(body, charset, content_type)
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except _NonFinite as error:
        position = _non_finite_position(text, error.literal)
        line = text.count("\n", 0, position) + 1
        column = position - text.rfind("\n", 0, position)
        raise MalformedBody(f"invalid JSON at line {line} column {column}: the number {error.literal[:40]} "
                            "is too large to be sent on", content_type=content_type or None,
                            position=position, line=line, column=column) from None
    except json.JSONDecodeError as error:
        raise MalformedBody(f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}",
                            content_type=content_type or None, position=error.pos,
                            line=error.lineno, column=error.colno) from None
    except (ValueError, RecursionError) as error:
        raise MalformedBody(f"invalid JSON: {str(error)[:120] or 'too deeply nested'}",
                            content_type=content_type or None) from None
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {"items": value}
    raise MalformedBody("a JSON body must be an object or an array", content_type=content_type or None)


class _NonFinite(ValueError):
    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


# A string, or a number outside strings: where a non-finite number sits in the text.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?[eE][-+]?\d+|-?\d+\.\d+')


def _finite_float(literal: str) -> float:
    # 1e999 reads as inf, which no JSON encoder writes back: refuse it at the door.
    value = float(literal)
    if not math.isfinite(value):
        raise _NonFinite(literal)
    return value


def _non_finite_position(text: str, literal: str) -> int:
    for match in _JSON_TOKEN.finditer(text):
        if match.group() == literal:
            return match.start()
    return 0


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _decode(body: bytes, charset: str | None, content_type: str) -> str:
    """Text of ``body``: a byte-order mark wins, then the declared charset, then JSON's detection."""
    encoding = next((name for bom, name in _BOMS if body.startswith(bom)), None)
    if encoding is None:
        encoding = _known_charset(charset, content_type) if charset else json.detect_encoding(body)
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as error:
        raise MalformedBody(f"body is not valid {encoding} (byte {error.start})",
                            content_type=content_type or None, position=error.start) from None


def _known_charset(charset: str, content_type: str) -> str:
    try:
        return codecs.lookup(charset).name
    except LookupError:
        raise UnsupportedMediaType(f"unknown charset {charset!r}", content_type=content_type) from None


# --- forms ---

def _form_fields(body: bytes, content_type: str, charset: str | None) -> dict[str, Any]:
    encoding = _known_charset(charset, content_type) if charset else "utf-8"
    text = _decode(body, encoding, content_type)
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding=encoding, errors="strict",
                          max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError as error:
        raise MalformedBody(f"form field is not valid {encoding} after percent-decoding",
                            content_type=content_type, position=error.start) from None
    except ValueError as error:
        raise MalformedBody(f"malformed form body: {error}", content_type=content_type) from None
    return _collect(pairs)


# --- multipart ---

def _multipart_fields(body: bytes, content_type: str, params: dict[str, str], files: str) -> dict[str, Any]:
    if not params.get("boundary"):
        raise MalformedBody("multipart body without a boundary parameter", content_type=content_type)
    try:
        parts = multipart.parse_parts(body, params["boundary"], max_parts=MAX_FIELDS)
    except multipart.MultipartError as error:
        raise MalformedBody(f"malformed multipart body ({error})", content_type=content_type) from None
    default_charset = _known_charset(params["charset"], content_type) if params.get("charset") else "utf-8"
    pairs = []
    for part in parts:
        if not part.name:
            continue
        if part.filename is not None or part.content_type.startswith("multipart/"):
            if files == "refuse":
                raise FilesRefused(f"file uploads are not accepted (field {part.name!r})", field=part.name)
            continue
        pairs.append((part.name, _part_text(part, default_charset, content_type)))
    return _collect(pairs)


def _part_text(part: multipart.Part, default_charset: str, content_type: str) -> str:
    charset = part.charset or default_charset
    try:
        return part.content.decode(_known_charset(charset, content_type))
    except UnicodeDecodeError as error:
        raise MalformedBody(f"multipart field {part.name!r} is not valid {charset}", field=part.name,
                            content_type=content_type, position=error.start) from None
