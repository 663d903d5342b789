"""``inbound.auth.signature``: one spec for every HMAC or plain-hash signing scheme.

A vendor signs a message built from parts of its request (the body, a timestamp,
the method and URL, its form parameters sorted by name, literal separators...)
with a shared secret, and sends the result, encoded, in a header. The spec says
which parts in which order, which algorithm and encoding, where the signature
and the timestamp arrive. A preset is the spec of one vendor; any key written
in the mapping overrides the preset's.

This module only describes and compiles; ``relay.intake.auth`` verifies.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from relay.mapping.checks import Checker
from relay.mapping.model import ENV_REF
from relay.mapping.yamlload import Map, Node, Scalar

if TYPE_CHECKING:
    from relay.mapping.model import HmacAuth

ALGORITHMS = ("hmac-sha1", "hmac-sha256", "hmac-sha512", "sha1", "sha256", "sha512")
ENCODINGS = ("hex", "base64", "base64url")
SECRET_ENCODINGS = ("text", "base64", "hex")
FORMATS = ("plain", "list")
UNITS = ("s", "ms")
# The parts of a request a vendor may sign; anything else in ``signed`` is a literal.
PART_NAMES = ("method", "url", "path", "query", "body", "form_sorted", "timestamp", "secret")
SIGNATURE_KEYS = ("preset", "secret", "algorithm", "encoding", "signed", "header", "prefix", "format",
                  "list", "timestamp", "url", "secret_encoding", "secret_prefix")
LIST_KEYS = ("separator", "pair", "signature_key", "timestamp_key")
TIMESTAMP_KEYS = ("header", "key", "unit", "tolerance")
DEFAULT_TOLERANCE_S = 300.0

DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


@dataclass(frozen=True)
class Part:
    """One piece of the signed message: a request part by name, a header's value, or literal text."""

    kind: str  # one of PART_NAMES, "header" or "literal"
    value: str = ""  # the header's name, or the literal text


@dataclass(frozen=True)
class ListFormat:
    """``t=1492774577,v1=5257a8...,v0=6ffbb5...``: several ``key<pair>value`` items in one header."""

    signature_key: str
    separator: str = ","
    pair: str = "="
    timestamp_key: str | None = None


@dataclass(frozen=True)
class TimestampSource:
    """Where the signed timestamp arrives, its unit, and how far from now it may be."""

    header: str | None = None
    key: str | None = None  # an item of a list-format signature header
    unit: str = "s"  # s | ms
    tolerance_s: float = DEFAULT_TOLERANCE_S


@dataclass(frozen=True)
class SignatureSpec:
    header: str
    algorithm: str  # one of ALGORITHMS
    encoding: str  # one of ENCODINGS
    signed: tuple[Part, ...]
    secret_envs: tuple[str, ...]  # one, or two during a rotation
    prefix: str = ""  # stripped from each given signature before comparing
    format: str = "plain"  # plain | list
    list: ListFormat | None = None
    timestamp: TimestampSource | None = None
    url: str | None = None  # the public URL the vendor signs: a URL or "${ENV}"
    secret_encoding: str = "text"  # how the secret's text becomes key bytes: text | base64 | hex
    secret_prefix: str = ""  # stripped from the secret before decoding (Svix's "whsec_")

    @property
    def is_hmac(self) -> bool:
        return self.algorithm.startswith("hmac-")

    @property
    def digest_name(self) -> str:
        return self.algorithm.removeprefix("hmac-")

    def env_names(self) -> set[str]:
        names = set(self.secret_envs)
        match = ENV_REF.match(self.url or "")
        if match:
            names.add(match.group(1))
        return names


BODY = (Part("body"),)
# Each preset cites the vendor document it follows; tests/intake/test_signature_presets.py checks
# each against that document's example or test vector.
PRESETS: dict[str, dict[str, Any]] = {
    # developers.facebook.com/docs/graph-api/webhooks/getting-started: X-Hub-Signature-256
    "meta": {"header": "X-Hub-Signature-256", "algorithm": "hmac-sha256", "encoding": "hex",
             "prefix": "sha256=", "signed": BODY},
    # typeform.com/developers/webhooks/secure-your-webhooks
    "typeform": {"header": "Typeform-Signature", "algorithm": "hmac-sha256", "encoding": "base64",
                 "prefix": "sha256=", "signed": BODY},
    # tally.so/help/webhooks: Tally-Signature, base64 HMAC-SHA256 of the body
    "tally": {"header": "Tally-Signature", "algorithm": "hmac-sha256", "encoding": "base64",
              "signed": BODY},
    # developers.hubspot.com/docs/api/webhooks/validating-requests: v1 = sha256(secret + body)
    "hubspot_v1": {"header": "X-HubSpot-Signature", "algorithm": "sha256", "encoding": "hex",
                   "signed": (Part("secret"), Part("body"))},
    # same page: v2 = sha256(secret + method + URI + body)
    "hubspot_v2": {"header": "X-HubSpot-Signature", "algorithm": "sha256", "encoding": "hex",
                   "signed": (Part("secret"), Part("method"), Part("url"), Part("body"))},
    # same page: v3 = base64(HMAC-SHA256(secret, method + URI + body + timestamp)), ms, 5 minutes
    "hubspot_v3": {"header": "X-HubSpot-Signature-v3", "algorithm": "hmac-sha256", "encoding": "base64",
                   "signed": (Part("method"), Part("url"), Part("body"), Part("timestamp")),
                   "timestamp": TimestampSource(header="X-HubSpot-Request-Timestamp", unit="ms")},
    # shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook
    "shopify": {"header": "X-Shopify-Hmac-Sha256", "algorithm": "hmac-sha256", "encoding": "base64",
                "signed": BODY},
    # docs.stripe.com/webhooks#verify-manually: "t=…,v1=…", signed "{t}.{body}", 5 minutes
    "stripe": {"header": "Stripe-Signature", "algorithm": "hmac-sha256", "encoding": "hex",
               "signed": (Part("timestamp"), Part("literal", "."), Part("body")), "format": "list",
               "list": ListFormat(signature_key="v1", timestamp_key="t"),
               "timestamp": TimestampSource(key="t")},
    # standardwebhooks.com (spec.md, "Verifying webhook authenticity"); Svix uses the same scheme
    "standard_webhooks": {
        "header": "webhook-signature", "algorithm": "hmac-sha256", "encoding": "base64",
        "signed": (Part("header", "webhook-id"), Part("literal", "."), Part("timestamp"),
                   Part("literal", "."), Part("body")),
        "format": "list", "list": ListFormat(signature_key="v1", separator=" ", pair=","),
        "timestamp": TimestampSource(header="webhook-timestamp"),
        "secret_encoding": "base64", "secret_prefix": "whsec_"},
    # docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    "github": {"header": "X-Hub-Signature-256", "algorithm": "hmac-sha256", "encoding": "hex",
               "prefix": "sha256=", "signed": BODY},
    # api.slack.com/authentication/verifying-requests-from-slack: "v0:{ts}:{body}", 5 minutes
    "slack": {"header": "X-Slack-Signature", "algorithm": "hmac-sha256", "encoding": "hex",
              "prefix": "v0=", "signed": (Part("literal", "v0:"), Part("timestamp"), Part("literal", ":"),
                                          Part("body")),
              "timestamp": TimestampSource(header="X-Slack-Request-Timestamp")},
}


def from_hmac(auth: HmacAuth) -> SignatureSpec:
    """``inbound.auth.hmac`` (an HMAC over the raw body) as a signature spec."""
    return SignatureSpec(header=auth.header, algorithm=f"hmac-{auth.algorithm}", encoding=auth.encoding,
                         signed=BODY, secret_envs=auth.secret_envs, prefix=auth.prefix)


def duration(ck: Checker, node: Node, where: str) -> float | None:
    text = ck.text(node, where)
    match = DURATION.match(text.strip()) if text is not None else None
    if text is not None and not match:
        ck.error(node, f"{where} must be a duration like 500ms, 5s, 10m, 24h or 7d, "
                       f"not '{text}'", "bad_duration")
    if not match:
        return None
    return float(match.group(1)) * DURATION_UNITS[match.group(2)]


# --- compiling ------------------------------------------------------------------------------

WHERE = "inbound.auth.signature"


def compile_signature(ck: Checker, node: Node) -> SignatureSpec | None:
    shape = ck.as_map(node, WHERE)
    if shape is None:
        return None
    ck.keys(shape, SIGNATURE_KEYS, WHERE)
    fields: dict[str, Any] = {}
    if (preset := shape.get("preset")) is not None:
        name = ck.choice(preset, tuple(PRESETS), f"{WHERE}.preset")
        fields.update(PRESETS.get(name or "", {}))
    ok = _own_fields(ck, shape, fields)
    secret_node = ck.need(shape, "secret", WHERE)
    envs = ck.secrets(secret_node, f"{WHERE}.secret") if secret_node is not None else None
    missing = [key for key in ("header", "algorithm", "encoding", "signed") if key not in fields and key not in shape]
    if missing:
        ck.error(shape, f"{WHERE} needs a preset ({', '.join(PRESETS)}) or {', '.join(missing)}",
                 "missing_key")
    if missing or not ok or not envs or any(key not in fields for key in ("header", "algorithm", "encoding")):
        return None
    spec = SignatureSpec(secret_envs=envs, **fields)
    if spec.timestamp is None and spec.list is not None and spec.list.timestamp_key:
        spec = replace(spec, timestamp=TimestampSource(key=spec.list.timestamp_key))
    return spec if _consistent(ck, shape, spec) else None


def _own_fields(ck: Checker, shape: Map, fields: dict[str, Any]) -> bool:
    """The keys written in the mapping, over the preset's; False when any is wrong."""
    readers: dict[str, Any] = {
        "header": lambda item: ck.text(item, f"{WHERE}.header"),
        "algorithm": lambda item: ck.choice(item, ALGORITHMS, f"{WHERE}.algorithm"),
        "encoding": lambda item: ck.choice(item, ENCODINGS, f"{WHERE}.encoding"),
        "format": lambda item: ck.choice(item, FORMATS, f"{WHERE}.format"),
        "secret_encoding": lambda item: ck.choice(item, SECRET_ENCODINGS, f"{WHERE}.secret_encoding"),
        "prefix": lambda item: _optional_text(item),
        "secret_prefix": lambda item: _optional_text(item),
        "signed": lambda item: _signed(ck, item),
        "list": lambda item: _list_format(ck, item, fields.get("list")),
        "timestamp": lambda item: _timestamp(ck, item),
        "url": lambda item: _url(ck, item),
    }
    ok = True
    for key, read in readers.items():
        item = shape.get(key)
        if item is None:
            continue
        value = read(item)
        if value is None:
            ok = False
        else:
            fields[key] = value
    return ok


def _optional_text(node: Node) -> str:
    return node.text if isinstance(node, Scalar) and not node.is_null else ""


def _signed(ck: Checker, node: Node) -> tuple[Part, ...] | None:
    where = f"{WHERE}.signed"
    items = ck.as_list(node, where)
    if items is None:
        return None
    if not items:
        ck.error(node, f"{where} must list at least one part", "wrong_shape")
        return None
    parts = [_part(ck, item, f"{where}[{index}]") for index, item in enumerate(items)]
    return None if any(part is None for part in parts) else tuple(p for p in parts if p is not None)


def _part(ck: Checker, node: Node, where: str) -> Part | None:
    if isinstance(node, Map):
        ck.keys(node, ("header", "literal"), where)
        if len(node.entries) != 1:
            ck.error(node, f"{where}: a part is a name, a literal text, {{header: Name}} or "
                           "{literal: text}", "wrong_shape")
            return None
        (kind, (_, value)), = node.entries.items()
        text = ck.text(value, f"{where}.{kind}") if kind in ("header", "literal") else None
        return Part(kind, text) if text is not None else None
    if isinstance(node, Scalar) and not node.is_null:
        return Part(node.text) if node.text in PART_NAMES else Part("literal", node.text)
    ck.error(node, f"{where}: a part is one of {', '.join(PART_NAMES)}, a literal text or "
                   "{header: Name}", "wrong_shape")
    return None


def _list_format(ck: Checker, node: Node, preset: ListFormat | None) -> ListFormat | None:
    where = f"{WHERE}.list"
    shape = ck.as_map(node, where)
    if shape is None:
        return None
    ck.keys(shape, LIST_KEYS, where)
    values: dict[str, str] = {}
    for key in LIST_KEYS:
        if (item := shape.get(key)) is not None:
            # A separator may be a space: read it raw rather than as stripped text.
            text = item.text if isinstance(item, Scalar) and not item.is_null else ck.text(item, f"{where}.{key}")
            if text is None:
                return None
            if not text:
                ck.error(item, f"{where}.{key} must not be empty", "bad_argument")
                return None
            values[key] = text
    base = preset or ListFormat(signature_key="")
    return replace(base, **values)


def _timestamp(ck: Checker, node: Node) -> TimestampSource | None:
    where = f"{WHERE}.timestamp"
    shape = ck.as_map(node, where)
    if shape is None:
        return None
    ck.keys(shape, TIMESTAMP_KEYS, where)
    places = [key for key in ("header", "key") if key in shape]
    if len(places) != 1:
        ck.error(shape, f"{where} needs exactly one of header or key", "wrong_shape")
        return None
    place = ck.text(shape.get(places[0]), f"{where}.{places[0]}")  # type: ignore[arg-type]
    unit_node, tolerance_node = shape.get("unit"), shape.get("tolerance")
    unit = ck.choice(unit_node, UNITS, f"{where}.unit") if unit_node is not None else "s"
    tolerance = duration(ck, tolerance_node, f"{where}.tolerance") if tolerance_node is not None \
        else DEFAULT_TOLERANCE_S
    if place is None or unit is None or tolerance is None:
        return None
    return TimestampSource(**{places[0]: place}, unit=unit, tolerance_s=tolerance)


def _url(ck: Checker, node: Node) -> str | None:
    text = ck.text(node, f"{WHERE}.url")
    if text is None:
        return None
    text = text.strip()
    match = ENV_REF.match(text)
    if match:
        ck.check_env(node, match.group(1))
    elif not re.match(r"^https?://[^/?#]+", text):
        ck.error(node, f"{WHERE}.url must be an http(s) URL or an ${{ENV_NAME}} reference", "bad_url")
        return None
    return text


def _consistent(ck: Checker, shape: Map, spec: SignatureSpec) -> bool:
    """What each key means depends on others: a timestamp part needs a timestamp source, and so on."""
    kinds = {part.kind for part in spec.signed}
    problems = []
    if "timestamp" in kinds and spec.timestamp is None:
        problems.append("signs a timestamp but has no 'timestamp:' source (header or key)")
    if spec.format == "list" and (spec.list is None or not spec.list.signature_key):
        problems.append("has format: list but no list.signature_key")
    if spec.timestamp is not None and spec.timestamp.key is not None:
        if spec.format != "list":
            problems.append("reads timestamp.key, which needs format: list")
        elif spec.list is not None and spec.list.timestamp_key not in (None, spec.timestamp.key):
            problems.append("names two different timestamp keys (timestamp.key and list.timestamp_key)")
    if not spec.is_hmac and "secret" not in kinds:
        problems.append(f"uses the plain hash {spec.algorithm}, so 'secret' must be one of the signed parts")
    for problem in problems:
        ck.error(shape, f"{WHERE} {problem}", "wrong_shape")
    return not problems
