"""Inbound authentication, failing closed.

Every configured check must pass, in this order: ip_allow, token, basic, then over
the body the signature (``signature`` or ``hmac``) and, once the body is parsed,
``body_key``. Messages say which check failed and never contain a secret or an
expected value.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Protocol, Sequence
from urllib.parse import parse_qsl, quote, quote_plus

from relay.errors import Forbidden, Unauthorized
from relay.intake.addresses import address_in
from relay.mapping import signatures
from relay.mapping.model import ENV_REF, MASK, BasicAuth, BodyKey, InboundSettings, TokenAuth
from relay.mapping.signatures import Part, SignatureSpec


class HeaderLookup(Protocol):
    """Request headers read by name, case-insensitively (werkzeug's Headers, or a plain dict)."""

    def get(self, key: str, /) -> str | None: ...


META_MODE, META_TOKEN, META_CHALLENGE = "hub.mode", "hub.verify_token", "hub.challenge"


def secret_values(env: Mapping[str, str], names: Iterable[str]) -> list[bytes]:
    # An unset or empty secret matches nothing; the 503 for it is raised before auth.
    return [env[name].encode("utf-8") for name in names if (env.get(name) or "").strip()]


def matches_any(given: bytes, expected: Sequence[bytes]) -> bool:
    # Compare against every candidate so timing does not tell which secret is current.
    matched = False
    for candidate in expected:
        matched |= hmac.compare_digest(given, candidate)
    return matched


def first_value(pairs: Sequence[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in pairs if key == name), None)


def check_ip(allowed: Sequence[str], client_addr: str) -> None:
    if allowed and not address_in(client_addr, allowed):
        raise Forbidden(f"ip_allow: address {client_addr or 'unknown'} is not allowed", check="ip_allow")


def check_token(token: TokenAuth, headers: HeaderLookup,
                query_pairs: Sequence[tuple[str, str]], env: Mapping[str, str]) -> None:
    if token.header:
        where, given = f"header {token.header}", headers.get(token.header)
    else:
        where, given = f"query parameter {token.query}", first_value(query_pairs, token.query or "")
    if not given:
        raise Unauthorized(f"missing token in {where}", check="token")
    if not matches_any(given.encode("utf-8"), secret_values(env, token.secret_envs)):
        raise Unauthorized(f"token mismatch in {where}", check="token")


def check_basic(basic: BasicAuth, authorization: str | None, env: Mapping[str, str]) -> None:
    scheme, _, encoded = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise Unauthorized("missing basic credentials in header Authorization", check="basic")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("unreadable basic credentials in header Authorization", check="basic") from None
    username, colon, password = decoded.partition(b":")
    username_ok = matches_any(username, secret_values(env, [basic.username_env]))
    password_ok = matches_any(password, secret_values(env, [basic.password_env]))
    if not (colon and username_ok and password_ok):
        raise Unauthorized("basic credentials mismatch in header Authorization", check="basic")


@dataclass(frozen=True)
class SignedRequest:
    """What a signature may cover, as received (the URL without its query string)."""

    method: str
    url: str  # scheme://host/path as the relay saw it
    path: str
    query: str  # raw, without the leading '?'
    headers: HeaderLookup
    body: bytes


def check_body(inbound: InboundSettings, *, headers: HeaderLookup, body: bytes,
               env: Mapping[str, str], request: SignedRequest | None = None,
               now: float | None = None) -> None:
    """The checks over the body: the signature, when the source has one."""
    spec = signing_spec(inbound)
    if spec is not None:
        signed = request or SignedRequest("POST", "", "", "", headers, body)
        check_signature(spec, signed, env, time.time() if now is None else now)


def signing_spec(inbound: InboundSettings) -> SignatureSpec | None:
    if inbound.signature is not None:
        return inbound.signature
    return signatures.from_hmac(inbound.hmac) if inbound.hmac is not None else None


def check_signature(spec: SignatureSpec, request: SignedRequest, env: Mapping[str, str], now: float) -> None:
    """Passes when any given signature matches any secret's; 401 naming the failed check otherwise."""
    where = f"header {spec.header}"
    raw = (request.headers.get(spec.header) or "").strip()
    if not raw:
        raise Unauthorized(f"missing signature in {where}", check="signature_missing")
    given, listed_timestamp = given_signatures(spec, raw)
    timestamp = signed_timestamp(spec, request.headers, listed_timestamp, now)
    keys = [signing_key(spec, secret) for secret in secret_values(env, spec.secret_envs)]
    expected = [encoded(spec, mac) for mac in
                (digest_of(spec, key, message(spec, request, key, timestamp, env)) for key in keys if key)]
    matched = False
    for candidate in given:
        matched |= matches_any(candidate, expected)
    if not matched:
        raise Unauthorized(f"signature mismatch in {where}", check="signature")


def given_signatures(spec: SignatureSpec, raw: str) -> tuple[list[bytes], str | None]:
    """The signatures a header carries, normalised for comparing, and a timestamp listed beside them."""
    if spec.format == "list" and spec.list is not None:
        found, timestamp = [], None
        for item in raw.split(spec.list.separator):
            key, pair, value = item.strip().partition(spec.list.pair)
            if pair and key == spec.list.signature_key:
                found.append(value.strip())
            elif pair and spec.timestamp is not None and key == spec.timestamp.key:
                timestamp = value.strip()
    else:
        found, timestamp = [raw], None
    return [normalised(spec, text) for text in found], timestamp


def normalised(spec: SignatureSpec, text: str) -> bytes:
    if spec.prefix:
        if not text.lower().startswith(spec.prefix.lower()):
            return b""  # never equal to an expected signature, which is never empty
        text = text[len(spec.prefix):]
    if spec.encoding == "hex":
        text = text.lower()
    elif spec.encoding == "base64url":
        text = text.rstrip("=")
    return text.encode("utf-8", "replace")


def signed_timestamp(spec: SignatureSpec, headers: HeaderLookup, listed: str | None,
                     now: float) -> str | None:
    """The timestamp as sent (it is signed as text); 401 when absent, unreadable or too far from now."""
    source = spec.timestamp
    if source is None:
        return None
    where = f"header {source.header}" if source.header else f"item {source.key} of header {spec.header}"
    text = (headers.get(source.header) or "").strip() if source.header else (listed or "")
    if not text:
        raise Unauthorized(f"missing timestamp in {where}", check="timestamp_missing")
    try:
        seconds = float(text) / (1000.0 if source.unit == "ms" else 1.0)
    except ValueError:
        raise Unauthorized(f"unreadable timestamp in {where}", check="timestamp_missing") from None
    if not abs(now - seconds) <= source.tolerance_s:
        raise Unauthorized(f"stale timestamp in {where}: more than {source.tolerance_s:g}s from now",
                           check="signature_stale")
    return text


def signing_key(spec: SignatureSpec, secret: bytes) -> bytes:
    text = secret.strip()
    if spec.secret_prefix and text.startswith(spec.secret_prefix.encode("utf-8")):
        text = text[len(spec.secret_prefix):]
    if spec.secret_encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return b""  # a mistyped secret matches nothing rather than crash every request
    if spec.secret_encoding == "hex":
        try:
            return bytes.fromhex(text.decode("ascii", "replace"))
        except ValueError:
            return b""
    return secret


def message(spec: SignatureSpec, request: SignedRequest, key: bytes, timestamp: str | None,
            env: Mapping[str, str]) -> bytes:
    return b"".join(part_bytes(part, request, key, timestamp, env, spec) for part in spec.signed)


def part_bytes(part: Part, request: SignedRequest, key: bytes, timestamp: str | None,
               env: Mapping[str, str], spec: SignatureSpec) -> bytes:
    kind = part.kind
    if kind == "body":
        return request.body
    if kind == "literal":
        return part.value.encode("utf-8")
    if kind == "timestamp":
        return (timestamp or "").encode("utf-8")
    if kind == "secret":
        return key
    if kind == "header":
        return (request.headers.get(part.value) or "").encode("utf-8")
    if kind == "method":
        return request.method.upper().encode("utf-8")
    if kind == "path":
        return request.path.encode("utf-8")
    if kind == "query":
        return request.query.encode("utf-8")
    if kind == "url":
        return public_url(spec, request, env).encode("utf-8")
    if kind == "form_sorted":
        pairs = sorted(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        return "".join(name + value for name, value in pairs).encode("utf-8")
    raise ValueError(f"unknown signed part {kind}")


def public_url(spec: SignatureSpec, request: SignedRequest, env: Mapping[str, str]) -> str:
    """The URL the vendor called: the configured public URL (behind a proxy) or the one received."""
    base = request.url
    if spec.url:
        match = ENV_REF.match(spec.url)
        base = env.get(match.group(1), "") if match else spec.url
    return f"{base}?{request.query}" if request.query else base


def digest_of(spec: SignatureSpec, key: bytes, data: bytes) -> bytes:
    if spec.is_hmac:
        return hmac.digest(key, data, spec.digest_name)
    return hashlib.new(spec.digest_name, data).digest()


def encoded(spec: SignatureSpec, mac: bytes) -> bytes:
    if spec.encoding == "hex":
        return mac.hex().encode("ascii")
    if spec.encoding == "base64url":
        return base64.urlsafe_b64encode(mac).rstrip(b"=")
    return base64.b64encode(mac)


def sign(spec: SignatureSpec, request: SignedRequest, env: Mapping[str, str], now: float) -> dict[str, str]:
    """The headers a vendor would send for ``request`` signed with the first secret (for tests and
    ``sign: true`` mapping test cases)."""
    secret = secret_values(env, spec.secret_envs)[0]
    stamp = None
    headers: dict[str, str] = {}
    if spec.timestamp is not None:
        stamp = str(int(now * 1000) if spec.timestamp.unit == "ms" else int(now))
        if spec.timestamp.header:
            headers[spec.timestamp.header] = stamp
    lookup = MergedHeaders(request.headers, headers)
    signed = SignedRequest(request.method, request.url, request.path, request.query, lookup, request.body)
    key = signing_key(spec, secret)
    value = spec.prefix + encoded(spec, digest_of(spec, key, message(spec, signed, key, stamp, env))).decode()
    if spec.format == "list" and spec.list is not None:
        items = []
        if spec.timestamp is not None and spec.timestamp.key:
            items.append(f"{spec.timestamp.key}{spec.list.pair}{stamp}")
        items.append(f"{spec.list.signature_key}{spec.list.pair}{value}")
        value = spec.list.separator.join(items)
    headers[spec.header] = value
    return headers


@dataclass(frozen=True)
class MergedHeaders:
    """Headers read case-insensitively from ``extra`` first, then ``base``."""

    base: HeaderLookup
    extra: Mapping[str, str]

    def get(self, key: str, /) -> str | None:
        for name, value in self.extra.items():
            if name.lower() == key.lower():
                return value
        return self.base.get(key)


# --- credentials in the body ---------------------------------------------------------------

def take_body_key(body_key: BodyKey, payload: Any, env: Mapping[str, str] | None) -> Any:
    """The payload without the key; with ``env`` the key must match one of its secrets (401 otherwise).

    Without ``env`` (a preview, a replay) only the removal runs.
    """
    parent = payload
    for name in body_key.keys[:-1]:
        parent = parent.get(name) if isinstance(parent, dict) else None
    last = body_key.keys[-1]
    given = parent.get(last) if isinstance(parent, dict) else None
    if env is not None:
        text = given if isinstance(given, str) else ""
        if not text:
            raise Unauthorized(f"missing key in body field {body_key.path}", check="body_key")
        if not matches_any(text.encode("utf-8"), secret_values(env, body_key.secret_envs)):
            raise Unauthorized(f"key mismatch in body field {body_key.path}", check="body_key")
    if isinstance(parent, dict) and last in parent:
        return without(payload, body_key.keys)
    return payload


def without(payload: Any, keys: tuple[str, ...]) -> Any:
    """A copy of ``payload`` without the value at ``keys``; only the dicts on the way are copied."""
    copy = dict(payload)
    if len(keys) == 1:
        copy.pop(keys[0], None)
    else:
        copy[keys[0]] = without(copy[keys[0]], keys[1:])
    return copy


def masked_body(body: bytes, body_key: BodyKey | None, env: Mapping[str, str]) -> bytes:
    """The raw body with every secret of ``body_key`` masked, as it is written, escaped or encoded."""
    if body_key is None:
        return body
    for secret in secret_values(env, body_key.secret_envs):
        text = secret.decode("utf-8")
        escaped = json.dumps(text)[1:-1]
        for form in {text, quote_plus(text), quote(text, safe=""), escaped, escaped.replace("/", "\\/")}:
            body = body.replace(form.encode("utf-8"), MASK.encode("ascii"))
    return body


def check_before_body(inbound: InboundSettings, *, client_addr: str, headers: HeaderLookup,
                      query_pairs: Sequence[tuple[str, str]], env: Mapping[str, str]) -> None:
    """The checks that need no body, so a stranger cannot make the relay read one."""
    check_ip(inbound.ip_allow, client_addr)
    if inbound.token:
        check_token(inbound.token, headers, query_pairs, env)
    if inbound.basic:
        check_basic(inbound.basic, headers.get("Authorization"), env)


def is_meta_handshake(inbound: InboundSettings, method: str,
                      query_pairs: Sequence[tuple[str, str]]) -> bool:
    return (inbound.meta_verify_token_env is not None and method == "GET"
            and first_value(query_pairs, META_MODE) == "subscribe"
            and first_value(query_pairs, META_CHALLENGE) is not None)


def meta_challenge(inbound: InboundSettings, query_pairs: Sequence[tuple[str, str]],
                   env: Mapping[str, str]) -> str:
    """The challenge to echo when Meta's verify token matches; Forbidden otherwise."""
    given = first_value(query_pairs, META_TOKEN) or ""
    expected = secret_values(env, [inbound.meta_verify_token_env or ""])
    if not given or not matches_any(given.encode("utf-8"), expected):
        raise Forbidden(f"verify token mismatch in query parameter {META_TOKEN}", check="meta_verify_token")
    return first_value(query_pairs, META_CHALLENGE) or ""
