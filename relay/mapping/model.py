"""Values that cross the mapping package's boundary.

Mapping a vendor request gives exactly one of three values: a
:class:`TrackdriveCall` (what will be sent), a :class:`Refusal` (why not) or a
:class:`Drop` (deliberately not sent). None of them is an exception, so callers
(web, CLI preview, mapping tests) treat them alike.

Secrets never live inside these values. A call carries ``${ENV_NAME}``
placeholders plus the list of which parameters are secret; the real value is
substituted only at send time by :meth:`TrackdriveCall.resolve`. That keeps
tokens out of the outbox, logs and previews, and lets a rotated token apply to
leads already queued.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import quote

from relay.errors import LeadRefused, SourceMisconfigured

if TYPE_CHECKING:
    from relay.mapping.signatures import SignatureSpec

ENV_REF = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}$")
MASK = "***"


@dataclass(frozen=True)
class Problem:
    """One lint finding, always tied to a place in a file."""

    file: str
    line: int
    column: int
    message: str
    code: str = "invalid"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.column,
                "code": self.code, "message": self.message}


@dataclass(frozen=True)
class InboundRequest:
    """A vendor request exactly as received: enough to map it again later."""

    method: str = "POST"
    content_type: str = ""
    body: bytes = b""
    query: str = ""  # raw query string, without the leading '?'
    headers: Mapping[str, str] = field(default_factory=dict)
    client_addr: str = ""


@dataclass(frozen=True)
class TrackdriveCall:
    """One Trackdrive API call, with secrets as ``${ENV}`` placeholders."""

    action: str  # create_lead | caller_opt_out | caller_remove | caller_move_to_end_of_schedule
    method: str  # POST | PUT
    path: str  # e.g. /api/v1/leads or /api/v1/leads/%2B15551234567/caller_opt_out
    query: dict[str, str]
    body: dict[str, Any]
    base_url: str | None = None  # None: the relay's TRACKDRIVE_BASE_URL; may be "${ENV}"
    secrets: dict[str, str] = field(default_factory=dict)  # parameter -> ENV name
    route: str | None = None
    # What the operator should know but that does not stop the call, e.g. a passthrough
    # token whose name clashed with another and was left out rather than overwriting it.
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"action": self.action, "method": self.method, "path": self.path,
                 "query": dict(self.query), "body": self.body, "base_url": self.base_url,
                 "secrets": dict(self.secrets), "route": self.route}
        if self.notes:
            shown["notes"] = list(self.notes)
        return shown

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TrackdriveCall:
        return cls(action=raw["action"], method=raw["method"], path=raw["path"],
                   query=dict(raw.get("query") or {}), body=dict(raw.get("body") or {}),
                   base_url=raw.get("base_url"), secrets=dict(raw.get("secrets") or {}),
                   route=raw.get("route"), notes=tuple(raw.get("notes") or ()))

    def resolve(self, env: Mapping[str, str], default_base_url: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        """(url, query, body) with every secret substituted; raises if one is unset."""
        values = {}
        for param, name in self.secrets.items():
            if not env.get(name):
                raise SourceMisconfigured(f"environment variable {name} is not set", variable=name)
            values[param] = env[name]
        query = {k: values.get(k, v) for k, v in self.query.items()}
        body = {k: values.get(k, v) for k, v in self.body.items()}
        base = self.base_url or default_base_url
        match = ENV_REF.match(base)
        if match:
            if not env.get(match.group(1)):
                raise SourceMisconfigured(f"environment variable {match.group(1)} is not set",
                                          variable=match.group(1))
            base = env[match.group(1)]
        return base.rstrip("/") + self.path, query, body


def caller_path(action: str, caller_id: str) -> str:
    if action == "create_lead":
        return "/api/v1/leads"
    return f"/api/v1/leads/{quote(caller_id, safe='')}/{action}"


@dataclass(frozen=True)
class Refusal:
    """The mapping will not produce a call; says which field, which paths, which rule."""

    source: str
    field: str
    rule: str  # stable, e.g. "required", "phone", "email", "integer", "time", "boolean"
    message: str
    paths: tuple[str, ...] = ()

    def to_error(self) -> LeadRefused:
        return LeadRefused(self.message, source=self.source, field=self.field,
                           rule=self.rule, paths=list(self.paths))

    def to_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = self.to_error().to_dict()["error"]
        return shown


@dataclass(frozen=True)
class Drop:
    """The lead is deliberately not sent (a vendor's test lead, say)."""

    source: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "reason": self.reason}


MapOutcome = TrackdriveCall | Refusal | Drop


# --- a source's inbound settings (the ``inbound:`` section of a mapping file) ---

@dataclass(frozen=True)
class TokenAuth:
    """A shared token in a header or a query parameter (one of the two is set)."""

    secret_envs: tuple[str, ...]  # one, or two during a rotation
    header: str | None = None
    query: str | None = None


@dataclass(frozen=True)
class BasicAuth:
    username_env: str
    password_env: str


@dataclass(frozen=True)
class HmacAuth:
    header: str
    algorithm: str  # sha1 | sha256 | sha512
    encoding: str  # hex | base64
    prefix: str  # e.g. "sha256=", "" for none
    secret_envs: tuple[str, ...]  # one, or two during a rotation


@dataclass(frozen=True)
class BodyKey:
    """A shared key the vendor sends inside the body (a form field or a JSON key)."""

    path: str  # as written, e.g. $.google_key
    keys: tuple[str, ...]  # the chain of names it walks
    secret_envs: tuple[str, ...]  # one, or two during a rotation


@dataclass(frozen=True)
class RateLimit:
    per_second: float
    burst: int


@dataclass(frozen=True)
class AnswerSpec:
    """An answer a source gives instead of the relay's JSON: its body is a compiled template."""

    status: int
    content_type: str
    body: Any  # a relay.mapping.templates.CompiledTemplate


@dataclass(frozen=True)
class VendorAnswer:
    """``inbound.answer``: what a vendor is told once its leads are committed."""

    accepted: AnswerSpec
    refused: AnswerSpec | None = None  # None: a refused request gets the relay's JSON answer
    duplicate: AnswerSpec | None = None  # None: a repeat gets the accepted answer


@dataclass(frozen=True)
class Handshake:
    """``inbound.handshakes[]``: a request answered at once, storing no lead."""

    methods: tuple[str, ...]
    when: Any  # payload -> bool, or None: every request of those methods
    answer: AnswerSpec
    auth: bool = True  # False: answered before the source's auth checks

    def matches(self, method: str, payload: Any) -> bool:
        return method in self.methods and (self.when is None or bool(self.when(payload)))


@dataclass(frozen=True)
class InboundSettings:
    max_body_bytes: int = 256 * 1024
    files: str = "ignore"  # ignore | refuse
    mode: str = "async"  # async | sync
    sync_deadline_s: float = 5.0
    token: TokenAuth | None = None
    basic: BasicAuth | None = None
    hmac: HmacAuth | None = None
    signature: SignatureSpec | None = None  # inbound.auth.signature, or hmac as a signature spec
    body_key: BodyKey | None = None
    query: tuple[str, ...] | None = None  # the query parameters merged into the payload; None: all
    ip_allow: tuple[str, ...] = ()  # CIDRs; empty means any address
    meta_verify_token_env: str | None = None  # answers Meta's hub.challenge when set
    idempotency_window_s: float = 0.0  # 0: no dedupe
    rate_limit: RateLimit | None = None
    answer: VendorAnswer | None = None
    handshakes: tuple[Handshake, ...] = ()

    @property
    def signed(self) -> bool:
        """A signature covers the request: its unsigned query string must not reach the payload."""
        return self.signature is not None or self.hmac is not None

    def secret_envs(self) -> set[str]:
        names: set[str] = set()
        if self.token:
            names.update(self.token.secret_envs)
        if self.basic:
            names.update((self.basic.username_env, self.basic.password_env))
        if self.hmac:
            names.update(self.hmac.secret_envs)
        if self.signature:
            names.update(self.signature.env_names())
        if self.body_key:
            names.update(self.body_key.secret_envs)
        if self.meta_verify_token_env:
            names.add(self.meta_verify_token_env)
        return names
