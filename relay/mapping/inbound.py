"""The ``inbound:`` section: how the relay receives one source."""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from relay.mapping.checks import Checker
from relay.mapping.model import BasicAuth, BodyKey, HmacAuth, InboundSettings, RateLimit, TokenAuth
from relay.mapping.paths import simple_keys_of
from relay.mapping.signatures import compile_signature, duration, from_hmac
from relay.mapping.values import Field, compile_field
from relay.mapping.yamlload import Map, Node, Scalar

KEYS = ("max_body", "files", "mode", "sync_deadline", "auth", "meta_verify_token",
        "idempotency", "rate_limit", "query", "answer", "handshakes")  # answer, handshakes: relay.mapping.answers
AUTH_KEYS = ("token", "basic", "hmac", "signature", "body_key", "ip_allow")
HMAC_KEYS = ("preset", "header", "algorithm", "encoding", "prefix", "secret")
HMAC_PRESETS = {
    "meta": {"header": "X-Hub-Signature-256", "algorithm": "sha256", "encoding": "hex",
             "prefix": "sha256="},
    "typeform": {"header": "Typeform-Signature", "algorithm": "sha256", "encoding": "base64",
                 "prefix": "sha256="},
}
DEFAULT_IDEMPOTENCY_WINDOW_S = 24 * 3600.0

SIZE = re.compile(r"^(\d+)\s*(B|KB|KiB|MB|MiB)?$")
SIZE_UNITS = {"B": 1, "KB": 1000, "KiB": 1024, "MB": 1000 ** 2, "MiB": 1024 ** 2, None: 1}


@dataclass(frozen=True)
class IdempotencyKey:
    """Where a lead's dedupe key comes from: a request header, or a value over the payload."""

    header: str | None = None
    field: Field | None = None


def size(ck: Checker, node: Node, where: str) -> int | None:
    text = ck.text(node, where)
    match = SIZE.match(text.strip()) if text is not None else None
    if text is not None and not match:
        ck.error(node, f"{where} must be a size like 1000, 256KiB or 1MiB, not '{text}'",
                 "bad_size")
    if not match:
        return None
    value = int(match.group(1)) * SIZE_UNITS[match.group(2)]
    if value <= 0:
        ck.error(node, f"{where} must be greater than 0", "bad_size")
        return None
    return value


def compile_inbound(ck: Checker, node: Node | None) -> tuple[InboundSettings, IdempotencyKey | None]:
    if node is None:
        return InboundSettings(), None
    section = ck.as_map(node, "inbound")
    if section is None:
        return InboundSettings(), None
    ck.keys(section, KEYS, "inbound")
    settings: dict[str, Any] = {}
    _simple(ck, section, settings)
    auth = section.get("auth")
    if auth is not None:
        settings.update(_auth(ck, auth))
    verify = section.get("meta_verify_token")
    if verify is not None:
        settings["meta_verify_token_env"] = ck.secret(verify, "inbound.meta_verify_token")
    key: IdempotencyKey | None = None
    idempotency = section.get("idempotency")
    if idempotency is not None:
        key, window = _idempotency(ck, idempotency)
        if key is not None and window:
            settings["idempotency_window_s"] = window
    rate = section.get("rate_limit")
    if rate is not None:
        settings["rate_limit"] = _rate_limit(ck, rate)
    if (query := section.get("query")) is not None:
        settings["query"] = _query(ck, query)
    clean = {name: value for name, value in settings.items() if value is not None}
    return InboundSettings(**clean), key


def _simple(ck: Checker, section: Map, settings: dict[str, Any]) -> None:
    if (node := section.get("max_body")) is not None:
        settings["max_body_bytes"] = size(ck, node, "inbound.max_body")
    if (node := section.get("files")) is not None:
        settings["files"] = ck.choice(node, ("ignore", "refuse"), "inbound.files")
    if (node := section.get("mode")) is not None:
        settings["mode"] = ck.choice(node, ("async", "sync"), "inbound.mode")
    if (node := section.get("sync_deadline")) is not None:
        settings["sync_deadline_s"] = duration(ck, node, "inbound.sync_deadline")


def _auth(ck: Checker, node: Node) -> dict[str, Any]:
    section = ck.as_map(node, "inbound.auth")
    if section is None:
        return {}
    ck.keys(section, AUTH_KEYS, "inbound.auth")
    found: dict[str, Any] = {}
    if (item := section.get("token")) is not None:
        found["token"] = _token(ck, item)
    if (item := section.get("basic")) is not None:
        found["basic"] = _basic(ck, item)
    if (item := section.get("hmac")) is not None:
        found["hmac"] = _hmac(ck, item)
        if found["hmac"] is not None:
            found["signature"] = from_hmac(found["hmac"])
    if (item := section.get("signature")) is not None:
        if "hmac" in section:
            ck.error(item, "inbound.auth takes hmac or signature, not both", "wrong_shape")
        found["signature"] = compile_signature(ck, item)
    if (item := section.get("body_key")) is not None:
        found["body_key"] = _body_key(ck, item)
    if (item := section.get("ip_allow")) is not None:
        found["ip_allow"] = _ip_allow(ck, item)
    return found


def _token(ck: Checker, node: Node) -> TokenAuth | None:
    where = "inbound.auth.token"
    shape = ck.as_map(node, where)
    if shape is None:
        return None
    ck.keys(shape, ("header", "query", "secret"), where)
    places = [key for key in ("header", "query") if key in shape]
    if len(places) != 1:
        ck.error(shape, f"{where} needs exactly one of header or query", "wrong_shape")
    secret_node = ck.need(shape, "secret", where)
    envs = ck.secrets(secret_node, f"{where}.secret") if secret_node is not None else None
    names = {key: ck.text(shape.get(key), f"{where}.{key}") for key in places}  # type: ignore[arg-type]
    if len(places) != 1 or not envs or None in names.values():
        return None
    return TokenAuth(secret_envs=envs, header=names.get("header"), query=names.get("query"))


def _basic(ck: Checker, node: Node) -> BasicAuth | None:
    where = "inbound.auth.basic"
    shape = ck.as_map(node, where)
    if shape is None:
        return None
    ck.keys(shape, ("username", "password"), where)
    names = ck.needed_secrets(shape, ("username", "password"), where)
    if names is None:
        return None
    return BasicAuth(username_env=names[0], password_env=names[1])


def _hmac(ck: Checker, node: Node) -> HmacAuth | None:
    where = "inbound.auth.hmac"
    shape = ck.as_map(node, where)
    if shape is None:
        return None
    ck.keys(shape, HMAC_KEYS, where)
    fields: dict[str, Any] = {}
    if (preset := shape.get("preset")) is not None:
        name = ck.choice(preset, tuple(HMAC_PRESETS), f"{where}.preset")
        fields.update(HMAC_PRESETS.get(name or "", {}))
    if (item := shape.get("header")) is not None:
        fields["header"] = ck.text(item, f"{where}.header")
    if (item := shape.get("algorithm")) is not None:
        fields["algorithm"] = ck.choice(item, ("sha1", "sha256", "sha512"), f"{where}.algorithm")
    if (item := shape.get("encoding")) is not None:
        fields["encoding"] = ck.choice(item, ("hex", "base64"), f"{where}.encoding")
    if (item := shape.get("prefix")) is not None:
        fields["prefix"] = to_prefix(item)
    secret_node = ck.need(shape, "secret", where)
    envs = ck.secrets(secret_node, f"{where}.secret") if secret_node is not None else None
    missing = [key for key in ("header", "algorithm", "encoding") if key not in fields]
    if missing:
        ck.error(shape, f"{where} needs a preset ({', '.join(HMAC_PRESETS)}) or "
                        f"{', '.join(missing)}", "missing_key")
    if missing or not envs or None in fields.values():
        return None
    return HmacAuth(header=fields["header"], algorithm=fields["algorithm"],
                    encoding=fields["encoding"], prefix=fields.get("prefix", ""), secret_envs=envs)


def _body_key(ck: Checker, node: Node) -> BodyKey | None:
    where = "inbound.auth.body_key"
    shape = ck.as_map(node, where)
    if shape is None:
        return None
    ck.keys(shape, ("path", "secret"), where)
    path_node = ck.need(shape, "path", where)
    secret_node = ck.need(shape, "secret", where)
    text = ck.text(path_node, f"{where}.path") if path_node is not None else None
    envs = ck.secrets(secret_node, f"{where}.secret") if secret_node is not None else None
    keys = simple_keys_of(text.strip()) if text is not None else None
    if text is not None and (not keys or not all(isinstance(key, str) for key in keys)):
        # The key is removed from the payload before mapping: only a plain chain of names says where.
        ck.error(path_node, f"{where}.path must be a plain path of names like $.api_key or "
                            f"$.auth.key, not '{text}'", "bad_jsonpath")
        return None
    if not keys or not envs:
        return None
    return BodyKey(path=text.strip() if text else "", keys=tuple(str(key) for key in keys), secret_envs=envs)


def _query(ck: Checker, node: Node) -> tuple[str, ...]:
    names = (ck.text(item, "inbound.query") for item in ck.as_items(node, "inbound.query"))
    return tuple(name.strip() for name in names if name is not None and name.strip())


def to_prefix(node: Node) -> str:
    return node.text if isinstance(node, Scalar) and not node.is_null else ""


def _ip_allow(ck: Checker, node: Node) -> tuple[str, ...] | None:
    where = "inbound.auth.ip_allow"
    networks = []
    for item in ck.as_items(node, where):
        text = ck.text(item, where)
        if text is None:
            continue
        try:
            networks.append(str(ipaddress.ip_network(text.strip(), strict=True)))
        except ValueError as exc:
            ck.error(item, f"{where}: '{text}' is not a valid address or CIDR: {exc}", "bad_cidr")
    return tuple(networks)


def _idempotency(ck: Checker, node: Node) -> tuple[IdempotencyKey | None, float | None]:
    where = "inbound.idempotency"
    shape = ck.as_map(node, where)
    if shape is None:
        return None, None
    ck.keys(shape, ("key", "window"), where)
    window_node = shape.get("window")
    window = duration(ck, window_node, f"{where}.window") if window_node is not None \
        else DEFAULT_IDEMPOTENCY_WINDOW_S
    key_node = ck.need(shape, "key", where)
    if key_node is None:
        return None, window
    return _key(ck, key_node, f"{where}.key"), window


def _key(ck: Checker, node: Node, where: str) -> IdempotencyKey | None:
    if isinstance(node, Map) and "header" in node:
        ck.keys(node, ("header",), where)
        header = ck.text(node.get("header"), f"{where}.header")  # type: ignore[arg-type]
        return IdempotencyKey(header=header) if header else None
    field = compile_field(ck, "idempotency_key", "key", node, where, phone_region="US")
    return IdempotencyKey(field=field) if field else None


def _rate_limit(ck: Checker, node: Node) -> RateLimit | None:
    where = "inbound.rate_limit"
    shape = ck.as_map(node, where)
    if shape is None:
        return None
    ck.keys(shape, ("per_second", "burst"), where)
    rate_node = ck.need(shape, "per_second", where)
    per_second = ck.number(rate_node, f"{where}.per_second") if rate_node is not None else None
    burst_node = shape.get("burst")
    burst = ck.integer(burst_node, f"{where}.burst", minimum=1) if burst_node is not None else None
    if per_second is None or (burst_node is not None and burst is None):
        return None
    return RateLimit(per_second=per_second, burst=burst or max(1, int(per_second + 0.999)))
