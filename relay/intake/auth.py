"""Inbound authentication, failing closed.

Every configured check must pass, in this order: ip_allow, token, basic, hmac.
Messages say which check failed and never contain an expected value.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Iterable, Mapping, Protocol, Sequence

from relay.errors import Forbidden, Unauthorized
from relay.intake.addresses import address_in
from relay.mapping.model import BasicAuth, HmacAuth, InboundSettings, TokenAuth


class HeaderLookup(Protocol):
    """Request headers read by name, case-insensitively (werkzeug's Headers, or a plain dict)."""

    def get(self, key: str, /) -> str | None: ...


DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
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


def expected_signatures(signing: HmacAuth, body: bytes, env: Mapping[str, str]) -> list[bytes]:
    digest = DIGESTS[signing.algorithm]
    signatures = []
    for secret in secret_values(env, signing.secret_envs):
        mac = hmac.new(secret, body, digest).digest()
        encoded = mac.hex() if signing.encoding == "hex" else base64.b64encode(mac).decode("ascii")
        signatures.append(encoded.encode("ascii"))
    return signatures


def check_signature(signing: HmacAuth, headers: HeaderLookup, body: bytes,
                    env: Mapping[str, str]) -> None:
    given = (headers.get(signing.header) or "").strip()
    if not given:
        raise Unauthorized(f"missing signature in header {signing.header}", check="hmac")
    if signing.prefix:
        if not given.lower().startswith(signing.prefix.lower()):
            raise Unauthorized(f"signature mismatch in header {signing.header}", check="hmac")
        given = given[len(signing.prefix):]
    if signing.encoding == "hex":
        given = given.lower()
    if not matches_any(given.encode("utf-8", "replace"), expected_signatures(signing, body, env)):
        raise Unauthorized(f"signature mismatch in header {signing.header}", check="hmac")


def check_before_body(inbound: InboundSettings, *, client_addr: str, headers: HeaderLookup,
                      query_pairs: Sequence[tuple[str, str]], env: Mapping[str, str]) -> None:
    """The checks that need no body, so a stranger cannot make the relay read one."""
    check_ip(inbound.ip_allow, client_addr)
    if inbound.token:
        check_token(inbound.token, headers, query_pairs, env)
    if inbound.basic:
        check_basic(inbound.basic, headers.get("Authorization"), env)


def check_body(inbound: InboundSettings, *, headers: HeaderLookup, body: bytes,
               env: Mapping[str, str]) -> None:
    if inbound.hmac:
        check_signature(inbound.hmac, headers, body, env)


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
