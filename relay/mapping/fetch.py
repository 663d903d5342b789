"""The ``fetch:`` section: how to read a lead from the vendor's API when the webhook holds ids only.

Compiled here, run by the delivery worker (relay.delivery.fetcher). Everything a
request needs is a :class:`Text`: literal text with ``${ENV}`` references (a
secret or setting, ``${NAME:-default}`` when it has one) and ``{$.path}``
placeholders read from the lead's part of the notification. Rendering never
touches the network; it gives a :class:`FetchRequest` whose secrets live only in
memory, for the one HTTP call.

The vendor's JSON answer becomes the payload ``prepare``, ``lead`` and ``data``
read, with the notification part under :data:`NOTIFICATION_KEY`.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import quote, urlsplit

from relay.mapping.checks import Checker
from relay.mapping.paths import CompiledPath, is_empty
from relay.mapping.signatures import duration
from relay.mapping.values import cached_path
from relay.mapping.yamlload import Node

NOTIFICATION_KEY = "_notification"
FETCH_KEYS = ("method", "url", "query", "headers", "auth", "timeout", "rate_limit")
AUTH_KEYS = ("bearer", "meta_appsecret_proof")
METHODS = ("GET", "POST")
DEFAULT_TIMEOUT_S = 10.0

# ${NAME} or ${NAME:-default}, and {$.json.path}
PLACEHOLDER = re.compile(r"\$\{(?P<env>[^}]*)\}|\{(?P<path>\$[^{}]*)\}")
ENV_PART = re.compile(r"^(?P<name>[A-Z_][A-Z0-9_]*)(?::-(?P<default>[^}]*))?$")


class MissingValue(Exception):
    """A request cannot be rendered: a path of the notification is empty, or a variable is unset."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind  # path | env
        self.name = name
        super().__init__(f"{kind} {name} is empty" if kind == "path" else f"environment variable {name} is not set")


@dataclass(frozen=True)
class EnvRef:
    name: str
    default: str | None = None


@dataclass(frozen=True)
class PathRef:
    path: CompiledPath


Part = str | EnvRef | PathRef


@dataclass(frozen=True)
class Text:
    """Literal text with ``${ENV}`` and ``{$.path}`` parts, rendered per lead."""

    parts: tuple[Part, ...]

    def render(self, part: Any, env: Mapping[str, str], *, in_url_path: bool = False) -> str:
        pieces = []
        for piece in self.parts:
            if isinstance(piece, str):
                pieces.append(piece)
            elif isinstance(piece, EnvRef):
                pieces.append(env_value(piece, env))
            else:
                value = path_value(piece, part)
                # an id taken from a vendor's payload must never reshape the URL it goes into
                pieces.append(quote(value, safe="") if in_url_path else value)
        return "".join(pieces)

    @property
    def paths(self) -> tuple[CompiledPath, ...]:
        return tuple(piece.path for piece in self.parts if isinstance(piece, PathRef))

    @property
    def env_refs(self) -> tuple[EnvRef, ...]:
        return tuple(piece for piece in self.parts if isinstance(piece, EnvRef))


def env_value(ref: EnvRef, env: Mapping[str, str]) -> str:
    value = (env.get(ref.name) or "").strip()
    if value:
        return value
    if ref.default is not None:
        return ref.default
    raise MissingValue("env", ref.name)


def path_value(ref: PathRef, part: Any) -> str:
    values = [value for value in ref.path.values(part) if not is_empty(value)]
    if not values or isinstance(values[0], (dict, list)):
        raise MissingValue("path", ref.path.text)
    return str(values[0]).strip()


@dataclass(frozen=True)
class Bearer:
    token_env: str


@dataclass(frozen=True)
class MetaAppSecretProof:
    """Graph API calls with ``access_token`` and ``appsecret_proof`` (HMAC-SHA256 of the token, hex)."""

    token_env: str
    app_secret_env: str


Auth = Bearer | MetaAppSecretProof


@dataclass(frozen=True)
class FetchRequest:
    """One rendered request. Holds secrets: never log it, store it or show it."""

    method: str
    url: str
    params: dict[str, str]
    headers: dict[str, str]
    timeout_s: float

    def __repr__(self) -> str:
        return f"FetchRequest({self.method}, {urlsplit(self.url).path!r})"


@dataclass(frozen=True)
class FetchSpec:
    method: str
    url: Text
    query: tuple[tuple[str, Text], ...] = ()
    headers: tuple[tuple[str, Text], ...] = ()
    auth: Auth | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    rate_per_s: float = 0.0  # 0: no limit
    env_names: frozenset[str] = field(default_factory=frozenset)  # required: no default

    def missing_ids(self, part: Any) -> list[str]:
        """The notification's paths the request needs but ``part`` leaves empty."""
        texts = [self.url, *(text for _, text in self.query), *(text for _, text in self.headers)]
        missing = []
        for text in texts:
            for path in text.paths:
                try:
                    path_value(PathRef(path), part)
                except MissingValue:
                    missing.append(path.text)
        return missing

    def request(self, part: Any, env: Mapping[str, str]) -> FetchRequest:
        """The request for one lead; raises :class:`MissingValue` naming what is empty."""
        url = self.url.render(part, env, in_url_path=True)
        params = {name: text.render(part, env) for name, text in self.query}
        headers = {name: text.render(part, env) for name, text in self.headers}
        if isinstance(self.auth, Bearer):
            headers["Authorization"] = f"Bearer {env_value(EnvRef(self.auth.token_env), env)}"
        elif isinstance(self.auth, MetaAppSecretProof):
            token = env_value(EnvRef(self.auth.token_env), env)
            secret = env_value(EnvRef(self.auth.app_secret_env), env)
            params["access_token"] = token
            params["appsecret_proof"] = appsecret_proof(token, secret)
        return FetchRequest(self.method, url, params, headers, self.timeout_s)

    @property
    def token_envs(self) -> tuple[str, ...]:
        """The variables that say who the relay is to the vendor's API, for error messages."""
        if isinstance(self.auth, Bearer):
            return (self.auth.token_env,)
        if isinstance(self.auth, MetaAppSecretProof):
            return (self.auth.token_env, self.auth.app_secret_env)
        return tuple(sorted(self.env_names))


def appsecret_proof(token: str, app_secret: str) -> str:
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def fetched_payload(response: Any, part: Any) -> dict[str, Any]:
    """What a fetched lead's mapping reads: the vendor's object, the notification beside it."""
    payload = dict(response) if isinstance(response, dict) else {"response": response}
    payload[NOTIFICATION_KEY] = part
    return payload


# --- compiling ---------------------------------------------------------------------------------

def compile_fetch(ck: Checker, node: Node) -> FetchSpec | None:
    shape = ck.as_map(node, "fetch")
    if shape is None:
        return None
    ck.keys(shape, FETCH_KEYS, "fetch")
    env_names: set[str] = set()
    method = "GET"
    if (item := shape.get("method")) is not None:
        method = (ck.choice(item, METHODS, "fetch.method") or "GET")
    url_node = ck.need(shape, "url", "fetch")
    url = compile_text(ck, url_node, "fetch.url", env_names) if url_node is not None else None
    if url is not None and url_node is not None:
        _check_url(ck, url_node, url)
    query = _texts(ck, shape.get("query"), "fetch.query", env_names)
    headers = _texts(ck, shape.get("headers"), "fetch.headers", env_names)
    auth = _auth(ck, shape.get("auth"), env_names)
    timeout_s = DEFAULT_TIMEOUT_S
    if (item := shape.get("timeout")) is not None:
        timeout_s = duration(ck, item, "fetch.timeout") or DEFAULT_TIMEOUT_S
    rate = _rate(ck, shape.get("rate_limit"))
    if url is None or query is None or headers is None:
        return None
    return FetchSpec(method, url, query, headers, auth, timeout_s, rate, frozenset(env_names))


def compile_text(ck: Checker, node: Node, where: str, env_names: set[str]) -> Text | None:
    text = ck.text(node, where)
    if text is None:
        return None
    parts: list[Part] = []
    at = 0
    ok = True
    for match in PLACEHOLDER.finditer(text):
        if match.start() > at:
            parts.append(text[at:match.start()])
        at = match.end()
        if match.group("env") is not None:
            env = ENV_PART.match(match.group("env"))
            if env is None:
                ck.error(node, f"{where}: '${{{match.group('env')}}}' is not an ${{ENV_NAME}} reference "
                               "(capitals, digits and _, optionally ${NAME:-default})", "bad_env_ref")
                ok = False
                continue
            ref = EnvRef(env.group("name"), env.group("default"))
            if ref.default is None:
                ck.check_env(node, ref.name)
                env_names.add(ref.name)
            parts.append(ref)
        else:
            try:
                parts.append(PathRef(cached_path(match.group("path"))))
            except ValueError as exc:
                ck.error(node, f"{where}: bad JSONPath in '{{{match.group('path')}}}': {exc}", "bad_jsonpath")
                ok = False
    if at < len(text):
        parts.append(text[at:])
    leftover = "".join(piece for piece in parts if isinstance(piece, str))
    if "${" in leftover or "{$" in leftover:
        ck.error(node, f"{where}: an unclosed placeholder: write ${{ENV_NAME}} or {{$.path}}", "bad_template")
        ok = False
    return Text(tuple(parts)) if ok else None


def _check_url(ck: Checker, node: Node, url: Text) -> None:
    first = url.parts[0] if url.parts else ""
    if isinstance(first, str) and not first.startswith(("http://", "https://")):
        ck.error(node, "fetch.url must start with http(s):// or an ${ENV_NAME} holding the base URL",
                 "bad_url")
    elif isinstance(first, PathRef):
        ck.error(node, "fetch.url must not start with a payload value: the vendor would choose "
                       "where the relay sends its token", "bad_url")


def _texts(ck: Checker, node: Node | None, where: str,
           env_names: set[str]) -> tuple[tuple[str, Text], ...] | None:
    if node is None:
        return ()
    shape = ck.as_map(node, where)
    if shape is None:
        return None
    compiled = [(name, compile_text(ck, value, f"{where}.{name}", env_names)) for name, value in shape.items()]
    if any(text is None for _, text in compiled):
        return None
    return tuple((name, text) for name, text in compiled if text is not None)


def _auth(ck: Checker, node: Node | None, env_names: set[str]) -> Auth | None:
    if node is None:
        return None
    shape = ck.as_map(node, "fetch.auth")
    if shape is None:
        return None
    ck.keys(shape, AUTH_KEYS, "fetch.auth")
    if len(shape.entries) != 1:
        ck.error(shape, "fetch.auth takes one of: bearer, meta_appsecret_proof", "bad_argument")
        return None
    if (item := shape.get("bearer")) is not None:
        token = ck.secret(item, "fetch.auth.bearer")
        if token is None:
            return None
        env_names.add(token)
        return Bearer(token)
    if (item := shape.get("meta_appsecret_proof")) is not None:
        return _meta_proof(ck, item, env_names)
    return None


def _meta_proof(ck: Checker, node: Node, env_names: set[str]) -> Auth | None:
    where = "fetch.auth.meta_appsecret_proof"
    shape = ck.as_map(node, where)
    if shape is None:
        return None
    ck.keys(shape, ("token", "app_secret"), where)
    names = ck.needed_secrets(shape, ("token", "app_secret"), where)
    if names is None:
        return None
    env_names.update(names)
    return MetaAppSecretProof(names[0], names[1])


def _rate(ck: Checker, node: Node | None) -> float:
    if node is None:
        return 0.0
    shape = ck.as_map(node, "fetch.rate_limit")
    if shape is None:
        return 0.0
    ck.keys(shape, ("per_second",), "fetch.rate_limit")
    item = ck.need(shape, "per_second", "fetch.rate_limit")
    return (ck.number(item, "fetch.rate_limit.per_second") or 0.0) if item is not None else 0.0
