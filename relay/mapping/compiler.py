"""Compiling one mapping file into a :class:`~relay.mapping.source.Source`.

Every section is checked even after an earlier one failed, so one run shows
every problem with its file:line:col. A file with only warnings (codes in
:data:`WARNING_CODES`) still compiles.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

import phonenumbers

from relay.mapping import flatten, prepare, trackdrive
from relay.mapping.answers import compile_answers
from relay.mapping.checks import Checker, closest
from relay.mapping.conditions import compile_condition
from relay.mapping.fetch import FetchSpec, compile_fetch
from relay.mapping.inbound import compile_inbound
from relay.mapping.model import ENV_REF, Problem
from relay.mapping.paths import CompiledPath
from relay.mapping.source import Passthrough, Plan, Route, Source, Target
from relay.mapping.templates import ENVIRONMENT
from relay.mapping.values import TEMPLATE_AS_CONSTANT, Field, cached_path, compile_field, is_path_text
from relay.mapping.yamlload import Map, Node, Scalar, load_yaml, to_python

TOP_KEYS = ("version", "description", "action", "phone_region", "trackdrive", "split", "prepare",
            "lead", "data", "passthrough", "drop", "routes", "inbound", "fetch", "include")
# What a shared fragment (``include:``) may hold: the parts that read a lead, never where it goes.
FRAGMENT_KEYS = ("description", "prepare", "lead", "data", "drop")
TRACKDRIVE_KEYS = ("base_url", "lead_token", "auth_token", "schedule_lead_token", "offer_lead_token")
LEAD_TOKENS = ("lead_token", "schedule_lead_token", "offer_lead_token")
ROUTE_KEYS = ("name", "when", "action", "trackdrive", "lead", "data")
PASSTHROUGH_KEYS = ("include", "exclude", "max_depth")
PREPARE_STEPS = ("decode_json", "pairs", "brackets", "unwrap_lists")
WARNING_CODES = frozenset({"unknown_name", TEMPLATE_AS_CONSTANT})
TEMPLATE_GLOBALS = frozenset(ENVIRONMENT.globals) | {"payload"}


def is_error(problem: Problem) -> bool:
    return problem.code not in WARNING_CODES


def file_version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def compile_source(name: str, path: str, text: str, *,
                   env: Mapping[str, str] | None = None) -> tuple[Source | None, list[Problem]]:
    """The compiled source (None when any error was found) and every problem, warnings included."""
    checker = Checker(path, env)
    root, yaml_problems = load_yaml(text, path)
    checker.problems.extend(yaml_problems)
    source = None
    if root is None and not yaml_problems:
        checker.error(None, "the mapping file is empty: it needs at least version, trackdrive and lead",
                      "empty_file")
    if root is not None:
        compiler = _Compiler(checker, name, path, "")
        source = compiler.compile(root)
        if source is not None:
            # a change to an included fragment is a new version of every source that uses it
            whole = text + "".join(compiler.included_texts)
            source = dataclasses.replace(source, version=file_version(whole.encode("utf-8")))
    problems = checker.unique_problems()
    if any(is_error(problem) for problem in problems):
        return None, problems
    return source, problems


@dataclasses.dataclass
class _Section:
    """A file's or a route's own values, before they are merged into a plan."""

    action: str | None = None
    target: Target | None = None
    lead: tuple[Field, ...] = ()
    data: tuple[Field, ...] = ()


@dataclasses.dataclass(frozen=True)
class _Shared:
    """What included fragments add before the file's own prepare steps, drops and fields."""

    steps: tuple[Any, ...]
    drops: tuple[tuple[Any, str], ...]
    section: _Section


class _Compiler:
    def __init__(self, checker: Checker, name: str, path: str, version: str) -> None:
        self.ck = checker
        self.name = name
        self.path = path
        self.version = version
        self.phone_region = "US"
        self.env_names: set[str] = set()
        self.included_texts: list[str] = []

    def compile(self, root: Node) -> Source | None:
        top = self.ck.as_map(root, "the mapping file")
        if top is None:
            return None
        self.ck.keys(top, TOP_KEYS, "the mapping file")
        self._check_version(top)
        description = self._description(top)
        self.phone_region = self._phone_region(top)
        split = self._split(top.get("split"))
        shared = self._includes(top.get("include"))
        steps = self._prepare(top.get("prepare"))
        base = self._section(top, "", require_target=True)
        drops = self._drops(top.get("drop"))
        if shared is not None and steps is not None and drops is not None:
            steps, drops = shared.steps + steps, shared.drops + drops
            base.lead = _merge_fields(shared.section.lead, base.lead)
            base.data = _merge_fields(shared.section.data, base.data)
        passthrough = self._passthrough(top.get("passthrough"))
        default_plan = self._plan(None, base, _Section(), passthrough, top)
        routes = self._routes(top.get("routes"), base, passthrough)
        inbound, idempotency = compile_inbound(self.ck, top.get("inbound"))
        answer, handshakes = compile_answers(self.ck, top.get("inbound"))
        inbound = dataclasses.replace(inbound, answer=answer, handshakes=handshakes)
        self.env_names.update(inbound.secret_envs() | self.ck.referenced_env)
        fetch = self._fetch(top.get("fetch"))
        if (default_plan is None or routes is None or steps is None or drops is None or shared is None
                or fetch is False):
            return None
        return Source(name=self.name, path=self.path, version=self.version, inbound=inbound,
                      description=description, prepare=steps, drops=drops, routes=routes,
                      plan=default_plan, idempotency=idempotency,
                      env_names=frozenset(self.env_names), split=split, fetch=fetch)

    # --- fetch and include ---

    def _fetch(self, node: Node | None) -> FetchSpec | Literal[False] | None:
        """The compiled spec, None when the source does not fetch, False when the section is wrong."""
        if node is None:
            return None
        spec = compile_fetch(self.ck, node)
        if spec is None:
            return False
        self.env_names.update(spec.env_names)
        return spec

    def _includes(self, node: Node | None) -> _Shared | None:
        """Every included fragment's steps, drops and fields, in order (later ones win)."""
        shared = _Shared((), (), _Section())
        if node is None:
            return shared
        ok = True
        for item in self.ck.as_items(node, "include"):
            fragment = self._include(item)
            if fragment is None:
                ok = False
                continue
            shared = _Shared(shared.steps + fragment.steps, shared.drops + fragment.drops,
                             _Section(lead=_merge_fields(shared.section.lead, fragment.section.lead),
                                      data=_merge_fields(shared.section.data, fragment.section.data)))
        return shared if ok else None

    def _include(self, node: Node) -> _Shared | None:
        relative = self.ck.text(node, "include")
        if relative is None:
            return None
        home = Path(self.path).parent
        target = home / relative.strip()
        try:
            inside = target.resolve().is_relative_to(home.resolve())
            text = target.read_text(encoding="utf-8") if inside else ""
        except (OSError, UnicodeDecodeError) as exc:
            self.ck.error(node, f"include: cannot read {relative.strip()}: {exc}", "unreadable")
            return None
        if not inside:
            self.ck.error(node, f"include: {relative.strip()} is outside the mappings directory",
                          "bad_include")
            return None
        self.included_texts.append(text)
        # The fragment's problems are reported against the fragment's own file and lines.
        checker = Checker(str(target), self.ck.env)
        fragment = _Compiler(checker, self.name, str(target), "")
        fragment.phone_region = self.phone_region
        root, yaml_problems = load_yaml(text, str(target))
        checker.problems.extend(yaml_problems)
        shape = checker.as_map(root, "a shared fragment") if root is not None else None
        result = None
        if shape is not None:
            checker.keys(shape, FRAGMENT_KEYS, "a shared fragment")
            steps = fragment._prepare(shape.get("prepare"))
            drops = fragment._drops(shape.get("drop"))
            section = fragment._section(shape, "", require_target=False)
            if steps is not None and drops is not None:
                result = _Shared(steps, drops, section)
        self.ck.problems.extend(checker.problems)
        self.env_names.update(fragment.env_names)
        if any(is_error(problem) for problem in checker.problems):
            return None
        return result

    # --- top-level scalars ---

    def _check_version(self, top: Map) -> None:
        node = top.get("version")
        if node is None:
            self.ck.error(top, "the mapping file needs 'version: 1'", "bad_version")
        elif not (isinstance(node, Scalar) and node.text.strip() == "1"):
            self.ck.error(node, "version must be 1, the only mapping version", "bad_version")

    def _description(self, top: Map) -> str:
        node = top.get("description")
        if node is None or (isinstance(node, Scalar) and node.is_null):
            return ""
        return self.ck.text(node, "description") or ""

    def _phone_region(self, top: Map) -> str:
        node = top.get("phone_region")
        if node is None:
            return "US"
        region = self.ck.text(node, "phone_region")
        if region is None:
            return "US"
        if region.strip().upper() not in phonenumbers.SUPPORTED_REGIONS:
            self.ck.error(node, f"phone_region '{region}' is not a known region code (like US, GB)",
                          "invalid_option")
            return "US"
        return region.strip().upper()

    # --- split, prepare, passthrough, drop ---

    def _split(self, node: Node | None) -> CompiledPath | None:
        if node is None:
            return None
        text = self.ck.text(node, "split")
        if text is None:
            return None
        if not is_path_text(text.strip()):
            self.ck.error(node, f"split: '{text}' is not a JSONPath (paths start with $. or $[)",
                          "bad_jsonpath")
            return None
        try:
            return cached_path(text.strip())
        except ValueError as exc:
            self.ck.error(node, f"split: bad JSONPath '{text}': {exc}", "bad_jsonpath")
            return None

    def _prepare(self, node: Node | None) -> tuple[Any, ...] | None:
        if node is None:
            return ()
        items = self.ck.as_list(node, "prepare")
        if items is None:
            return None
        steps = [self._step(item, f"prepare[{index}]") for index, item in enumerate(items)]
        return None if any(step is None for step in steps) else tuple(steps)

    def _step(self, node: Node, where: str) -> Any:
        if isinstance(node, Map) and len(node.entries) == 1:
            (step, (at, arg_node)), = node.entries.items()
            arg = to_python(arg_node)
        elif isinstance(node, Scalar) and not node.is_null:
            step, at, arg = node.text.strip(), node, None
        else:
            self.ck.error(node, f"{where}: a step is a name or a one-key mapping {{step: argument}}",
                          "wrong_shape")
            return None
        if step not in PREPARE_STEPS:
            hint = closest(step, PREPARE_STEPS)
            self.ck.error(at, f"{where}: unknown prepare step '{step}'"
                              + (f"; did you mean '{hint}'?" if hint else
                                 f"; known steps: {', '.join(PREPARE_STEPS)}"), "unknown_step")
            return None
        try:
            return prepare.compile_step(step, arg)
        except ValueError as exc:
            self.ck.error(at, f"{where}: bad argument for {step}: {exc}", "bad_argument")
            return None

    def _passthrough(self, node: Node | None) -> Passthrough | None:
        if node is None:
            return None
        if isinstance(node, Scalar):
            return Passthrough() if self.ck.boolean(node, "passthrough") else None
        shape = self.ck.as_map(node, "passthrough")
        if shape is None:
            return None
        self.ck.keys(shape, PASSTHROUGH_KEYS, "passthrough")
        globs = {key: self._globs(shape.get(key), f"passthrough.{key}") for key in ("include", "exclude")}
        depth_node = shape.get("max_depth")
        depth = self.ck.integer(depth_node, "passthrough.max_depth", minimum=1) \
            if depth_node is not None else 3
        return Passthrough(include=globs["include"], exclude=globs["exclude"], max_depth=depth or 3)

    def _globs(self, node: Node | None, where: str) -> tuple[str, ...]:
        if node is None:
            return ()
        texts = (self.ck.text(item, where) for item in self.ck.as_items(node, where))
        return tuple(text for text in texts if text is not None)

    def _drops(self, node: Node | None) -> tuple[tuple[Any, str], ...] | None:
        if node is None:
            return ()
        items = self.ck.as_list(node, "drop")
        if items is None:
            return None
        rules = [self._drop(item, f"drop[{index}]") for index, item in enumerate(items)]
        kept = [rule for rule in rules if rule is not None]
        return tuple(kept) if len(kept) == len(rules) else None

    def _drop(self, node: Node, where: str) -> tuple[Any, str] | None:
        shape = self.ck.as_map(node, where)
        if shape is None:
            return None
        self.ck.keys(shape, ("when", "reason"), where)
        when_node = self.ck.need(shape, "when", where)
        reason_node = self.ck.need(shape, "reason", where)
        when = compile_condition(self.ck, when_node, f"{where}.when") if when_node is not None else None
        reason = self.ck.text(reason_node, f"{where}.reason") if reason_node is not None else None
        return (when, reason) if when is not None and reason is not None else None

    # --- lead, data, trackdrive: a section of the file or of a route ---

    def _section(self, shape: Map, prefix: str, *, require_target: bool) -> _Section:
        section = _Section()
        if (node := shape.get("action")) is not None:
            section.action = self.ck.choice(node, trackdrive.ACTIONS, f"{prefix}action")
        target_node = shape.get("trackdrive")
        if target_node is None and require_target:
            self.ck.error(shape, "the mapping file needs a 'trackdrive' section with a lead_token",
                          "missing_key")
        elif target_node is not None:
            section.target = self._target(target_node, f"{prefix}trackdrive")
        if (node := shape.get("lead")) is not None:
            section.lead = self._fields(node, "lead", f"{prefix}lead")
        if (node := shape.get("data")) is not None:
            section.data = self._fields(node, "data", f"{prefix}data")
        return section

    def _target(self, node: Node, where: str) -> Target | None:
        shape = self.ck.as_map(node, where)
        if shape is None:
            return None
        self.ck.keys(shape, TRACKDRIVE_KEYS, where)
        secrets = {}
        for param in TRACKDRIVE_KEYS[1:]:
            if (item := shape.get(param)) is not None:
                env_name = self.ck.secret(item, f"{where}.{param}")
                if env_name:
                    secrets[param] = env_name
                    self.env_names.add(env_name)
        base_url = None
        if (item := shape.get("base_url")) is not None:
            base_url = self._base_url(item, f"{where}.base_url")
        return Target(base_url=base_url, secrets=secrets)

    def _base_url(self, node: Node, where: str) -> str | None:
        text = self.ck.text(node, where)
        if text is None:
            return None
        text = text.strip()
        match = ENV_REF.match(text)
        if match:
            self.ck.check_env(node, match.group(1))
            self.env_names.add(match.group(1))
            return text
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            self.ck.error(node, f"{where} must be an http(s) URL like https://acme.trackdrive.com "
                                "or an ${ENV_NAME} reference", "bad_url")
            return None
        return text.rstrip("/")

    def _fields(self, node: Node, target: str, where: str) -> tuple[Field, ...]:
        shape = self.ck.as_map(node, where)
        if shape is None:
            return ()
        fields = []
        for name, (key, value) in shape.entries.items():
            if not self._field_name_ok(name, key, target, where):
                continue
            item = compile_field(self.ck, name, target, value, f"{where}.{name}",
                                 phone_region=self.phone_region)
            if item is not None:
                fields.append(dataclasses.replace(item, line=key.line, column=key.column))
        return tuple(fields)

    def _field_name_ok(self, name: str, key: Scalar, target: str, where: str) -> bool:
        if target == "data":
            if not flatten.TOKEN_NAME.match(name):
                self.ck.error(key, f"{where}: '{name}' is not a Trackdrive token name (lowercase "
                                   "letters, digits and _, starting with a letter)", "bad_token_name")
                return False
            return True
        if name in trackdrive.SECRET_PARAMS:
            self.ck.error(key, f"{where}: {name} is a secret: set it under trackdrive:",
                          "misplaced_key")
            return False
        known = set().union(*(trackdrive.params_for(action) for action in trackdrive.ACTIONS))
        if name not in known:
            hint = closest(name, known)
            self.ck.error(key, f"{where}: '{name}' is not a Trackdrive lead parameter"
                               + (f"; did you mean '{hint}'?" if hint else
                                  "; put custom values under data:"), "unknown_param")
            return False
        return True

    # --- routes and plans ---

    def _routes(self, node: Node | None, base: _Section,
                passthrough: Passthrough | None) -> tuple[Route, ...] | None:
        if node is None:
            return ()
        items = self.ck.as_list(node, "routes")
        if items is None:
            return None
        routes = [self._route(item, index, base, passthrough) for index, item in enumerate(items)]
        kept = [route for route in routes if route is not None]
        return tuple(kept) if len(kept) == len(routes) else None

    def _route(self, node: Node, index: int, base: _Section,
               passthrough: Passthrough | None) -> Route | None:
        where = f"routes[{index}]"
        shape = self.ck.as_map(node, where)
        if shape is None:
            return None
        self.ck.keys(shape, ROUTE_KEYS, where)
        name = f"route_{index + 1}"
        if (name_node := shape.get("name")) is not None:
            name = self.ck.text(name_node, f"{where}.name") or name
        when_node = self.ck.need(shape, "when", where)
        when = compile_condition(self.ck, when_node, f"{where}.when") if when_node is not None else None
        own = self._section(shape, f"{where}.", require_target=False)
        plan = self._plan(name, base, own, passthrough, shape)
        if when is None or plan is None:
            return None
        return Route(name, when, plan)

    def _plan(self, route: str | None, base: _Section, own: _Section,
              passthrough: Passthrough | None, at: Map) -> Plan | None:
        action = own.action or base.action or "create_lead"
        target = _merge_targets(base.target, own.target)
        fields = _merge_fields(_inherited(base, action), own.lead + own.data)
        label = f" (route {route})" if route else ""
        ok = self._check_params(action, fields, label)
        ok = self._check_target(action, target, at, label) and ok
        if action != "create_lead" and not any(f.target == "lead" and f.name == "caller_id"
                                               for f in fields):
            self.ck.error(at, f"{action}{label} needs lead.caller_id: it goes in the URL",
                          "missing_key")
            ok = False
        self._check_template_names(fields)
        if not ok or target is None:
            return None
        consumed = frozenset(keys for item in fields for keys in item.simple_keys)
        ordered = tuple(f for f in fields if not f.is_template) + tuple(f for f in fields if f.is_template)
        return Plan(route, action, ordered, target, passthrough, consumed)

    def _check_params(self, action: str, fields: tuple[Field, ...], label: str) -> bool:
        allowed = trackdrive.params_for(action)
        ok = True
        for item in fields:
            if item.target != "lead":
                continue
            if item.name not in allowed:
                self.ck.error(item, f"lead.{item.name} is not a parameter of {action}{label}",
                              "invalid_param")
                ok = False
            elif item.constant is not None and not item.transforms:
                ok = self._check_constant(item) and ok
        return ok

    def _check_constant(self, item: Field) -> bool:
        try:
            trackdrive.coerce(item.name, item.constant)
        except trackdrive.ParamError as exc:
            self.ck.error(item, f"lead.{item.name}: '{item.constant}' is not valid: "
                                f"{getattr(exc, 'message', exc)}", "invalid_option")
            return False
        return True

    def _check_target(self, action: str, target: Target | None, at: Map, label: str) -> bool:
        if target is None:
            return False
        tokens = LEAD_TOKENS if action == "create_lead" else (*LEAD_TOKENS, "auth_token")
        if any(token in target.secrets for token in tokens):
            return True
        self.ck.error(at, f"{action}{label} needs trackdrive.{' or '.join(tokens)}", "missing_key")
        return False

    def _check_template_names(self, fields: tuple[Field, ...]) -> None:
        defined = {item.name for item in fields} | TEMPLATE_GLOBALS
        for item in fields:
            if item.template is None:
                continue
            for unknown in sorted(item.template.names - defined):
                self.ck.error(item, f"warning: template of {item.target}.{item.name} uses "
                                    f"'{unknown}', which no lead or data value defines "
                                    "(it renders empty)", "unknown_name")


def _inherited(base: _Section, action: str) -> tuple[Field, ...]:
    """The file's fields a route keeps: a route that switches to a caller action keeps what it accepts."""
    if action == (base.action or "create_lead"):
        return base.lead + base.data
    allowed = trackdrive.params_for(action)
    lead = tuple(item for item in base.lead if item.name in allowed)
    return lead + (base.data if action == "create_lead" else ())


def _merge_targets(base: Target | None, own: Target | None) -> Target | None:
    if own is None:
        return base
    if base is None:
        return own
    secrets = dict(base.secrets)
    if any(token in own.secrets for token in LEAD_TOKENS):
        # a route that names its own lead token replaces the file's, never adds to it
        for token in LEAD_TOKENS:
            secrets.pop(token, None)
    secrets.update(own.secrets)
    return Target(base_url=own.base_url or base.base_url, secrets=secrets)


def _merge_fields(base: tuple[Field, ...], own: tuple[Field, ...]) -> tuple[Field, ...]:
    replaced = {(item.target, item.name) for item in own}
    kept = tuple(item for item in base if (item.target, item.name) not in replaced)
    return kept + own
