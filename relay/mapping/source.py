"""A compiled mapping file: everything parsed once, so mapping a lead reads no file.

A :class:`Plan` is what one route (or the file's defaults) turns a payload
into: its action, its ordered fields, its Trackdrive target and passthrough
rules. The :class:`Source` runs prepare steps and drop rules, picks the first
matching route's plan, and returns a value: a call, a refusal or a drop.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from relay.errors import RelayError
from relay.mapping import body, flatten, trackdrive
from relay.mapping.fetch import FetchSpec
from relay.mapping.inbound import IdempotencyKey
from relay.mapping.model import Drop, InboundRequest, InboundSettings, MapOutcome, Refusal
from relay.mapping.paths import CompiledPath
from relay.mapping.transforms import TransformError
from relay.mapping.values import Field, FieldRefused, refusal_message, resolve

Condition = Callable[[Any], bool]
Step = Callable[[Any], Any]


@dataclass(frozen=True)
class Passthrough:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_depth: int = 3


@dataclass(frozen=True)
class Target:
    """Where and as whom a plan calls Trackdrive; secrets are ENV names only."""

    base_url: str | None = None  # a URL, "${ENV}", or None for the relay's default
    secrets: Mapping[str, str] = field(default_factory=dict)  # parameter -> ENV name


@dataclass(frozen=True)
class Plan:
    route: str | None
    action: str
    fields: tuple[Field, ...]  # plain values first, then templates, each in file order
    target: Target
    passthrough: Passthrough | None
    consumed: frozenset[tuple[Any, ...]]  # payload keys read by simple paths: passthrough skips them

    def run(self, source: str, payload: Any) -> MapOutcome:
        context: dict[str, Any] = {"payload": payload}
        params: dict[str, Any] = {}
        data: dict[str, Any] = {}
        for item in self.fields:
            value = resolve(item, payload, context)
            if value is None:
                continue
            context[item.name] = value
            if item.target == "lead":
                params[item.name] = value
            else:
                data[item.name] = value
        for name, value in params.items():
            params[name] = self._coerce(name, value)
        if self.action != "create_lead" and "caller_id" not in params:
            return Refusal(source, "caller_id", "required",
                           f"caller_id is required for {self.action} but was empty",
                           self._paths_of("caller_id"))
        clashes = self._pass_through(payload, data) if self.passthrough is not None else ()
        call = trackdrive.build_call(self.action, params, data, secrets=dict(self.target.secrets),
                                     base_url=self.target.base_url, route=self.route)
        if clashes:
            call = replace(call, notes=tuple(
                f"passthrough token {name} clashes with another value of that name; the first was kept"
                for name in clashes))
        return call

    def _coerce(self, name: str, value: Any) -> Any:
        try:
            return trackdrive.coerce(name, value)
        except trackdrive.ParamError as error:
            item = self.field_named(name)
            assert item is not None
            raise FieldRefused(item, error.rule, refusal_message(item, error.message)) from None

    def _pass_through(self, payload: Any, data: dict[str, Any]) -> list[str]:
        """Copies unmapped payload values into data; returns the token names that clashed."""
        rules = self.passthrough
        assert rules is not None
        tokens, clashes = flatten.flatten(payload, max_depth=rules.max_depth, include=rules.include,
                                          exclude=rules.exclude, skip=self.consumed)
        for name, value in tokens.items():
            # An explicitly mapped value wins over a copied one; a copy that differs is a clash.
            if data.setdefault(name, value) != value and name not in clashes:
                clashes.append(name)
        return clashes

    def _paths_of(self, name: str) -> tuple[str, ...]:
        return next((item.paths for item in self.fields if item.name == name), ())

    def field_named(self, name: str) -> Field | None:
        return next((item for item in self.fields if item.name == name), None)


@dataclass(frozen=True)
class Route:
    name: str
    when: Condition
    plan: Plan


@dataclass(frozen=True, eq=False)
class Source:
    name: str
    path: str
    version: str  # first 12 hex chars of the file's sha256
    inbound: InboundSettings
    description: str
    prepare: tuple[Step, ...]
    drops: tuple[tuple[Condition, str], ...]
    routes: tuple[Route, ...]
    plan: Plan  # used when no route matches
    idempotency: IdempotencyKey | None = None
    env_names: frozenset[str] = frozenset()
    # Where the leads of one request are: every match becomes a lead of its own. None: the
    # whole payload is one lead.
    split: CompiledPath | None = None
    # The vendor sends ids only; each lead is fetched from its API before it is mapped, by
    # the delivery worker after the vendor has its answer. None: mapped on receipt.
    fetch: FetchSpec | None = None

    def parse(self, request: InboundRequest) -> dict[str, Any]:
        return body.parse_request(request, files=self.inbound.files)

    def split_leads(self, payload: Any) -> list[Any]:
        """The payloads of the leads one request carries, in order (empty when the path matched nothing)."""
        if self.split is None:
            return [payload]
        return [match for match in self.split.values(payload) if match is not None]

    def map(self, request: InboundRequest) -> MapOutcome:
        """One request taken as one lead (the whole payload), mapped now."""
        return self.map_payload(self.parse(request))

    def map_payload(self, payload: Any) -> MapOutcome:
        """A call, a refusal or a drop; a defect in the mapping code raises, so it is seen."""
        try:
            return self._map(payload)
        except FieldRefused as refused:
            return Refusal(self.name, refused.field.name, refused.rule, refused.message,
                           refused.field.paths)
        except RelayError as error:
            return Refusal(self.name, "payload", error.code, error.message)

    def _map(self, payload: Any) -> MapOutcome:
        payload = self.prepared(payload)
        for when, reason in self.drops:
            if when(payload):
                return Drop(self.name, reason)
        plan = self.select(payload)
        try:
            return plan.run(self.name, payload)
        except (TransformError, trackdrive.ParamError, ValueError) as error:
            # build_call's own checks; field values were already checked one by one
            return self._refusal_for(error)

    def prepared(self, payload: Any) -> Any:
        if self.prepare and isinstance(payload, dict):
            payload = dict(payload)  # steps replace top-level keys: keep the caller's dict intact
        for step in self.prepare:
            payload = step(payload)
        return payload

    def select(self, payload: Any) -> Plan:
        for route in self.routes:
            if route.when(payload):
                return route.plan
        return self.plan

    def _refusal_for(self, error: Exception) -> Refusal:
        rule = getattr(error, "rule", "invalid")
        message = getattr(error, "message", str(error))
        return Refusal(self.name, "lead", rule, message)

    def idempotency_key(self, payload: dict[str, Any], headers: Mapping[str, str]) -> str | None:
        if self.idempotency is None or not self.inbound.idempotency_window_s:
            return None
        if self.idempotency.header is not None:
            return _header(headers, self.idempotency.header)
        key_field = self.idempotency.field
        assert key_field is not None
        try:
            prepared = self.prepared(payload)
            value = resolve(key_field, prepared, {"payload": prepared})
        except Exception:  # a key that cannot be read means no dedupe, never a failed request
            return None
        if value is None:
            return None
        text = str(value).strip()
        return text or None

    def required_env(self) -> set[str]:
        return set(self.env_names)

    def missing_env(self, env: Mapping[str, str]) -> list[str]:
        # A value of only spaces is a paste gone wrong, not a secret: it counts as unset.
        return sorted(name for name in self.env_names if not (env.get(name) or "").strip())

    def __repr__(self) -> str:
        return f"Source({self.name!r}, version={self.version!r})"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value.strip() or None
    return None

