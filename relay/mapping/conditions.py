"""Conditions for ``drop`` and ``routes``: compiled once to ``payload -> bool`` closures.

Payload values are compared as text (JSON ``true`` is ``"true"``, ``5`` is
``"5"``), because vendors send the same answer as a number one day and as a
string the next. A path that matches several values passes when any does.

A value written ``${ENV_NAME}`` (in ``equals`` or ``in``) is read when the
condition runs, from the environment the lead is evaluated with (see
:func:`environment`), else the one the file was compiled with. An unset
variable equals nothing, and no message ever shows its value.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator, Mapping

from relay.mapping import paths
from relay.mapping.checks import Checker
from relay.mapping.model import ENV_REF
from relay.mapping.values import cached_path, is_path_text
from relay.mapping.yamlload import Map, Node, Scalar

Condition = Callable[[Any], bool]

TESTS = ("equals", "in", "matches", "exists", "empty")
COMBINATORS = ("all", "any", "not")
KEYS = ("path", "ignore_case", *TESTS, *COMBINATORS)


_EVALUATED_WITH: ContextVar[Mapping[str, str] | None] = ContextVar("evaluated_with", default=None)


@contextmanager
def environment(env: Mapping[str, str] | None) -> Iterator[None]:
    """Conditions evaluated inside read ``${ENV}`` values from ``env`` (None: keep the current one)."""
    if env is None:
        yield
        return
    token = _EVALUATED_WITH.set(env)
    try:
        yield
    finally:
        _EVALUATED_WITH.reset(token)


def _env_text(name: str, compiled_with: Mapping[str, str] | None) -> Callable[[], str | None]:
    def current() -> str | None:
        env = _EVALUATED_WITH.get()
        if env is None:
            env = compiled_with or {}
        return env.get(name) or None
    return current


def as_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


def compile_condition(ck: Checker, node: Node, where: str) -> Condition | None:
    shape = ck.as_map(node, where)
    if shape is None:
        return None
    ck.keys(shape, KEYS, where)
    chosen = [key for key in (*TESTS, *COMBINATORS) if key in shape]
    if len(chosen) != 1:
        ck.error(shape, f"{where} needs exactly one of {', '.join(TESTS + COMBINATORS)}"
                        + (f" (found {', '.join(chosen)})" if chosen else ""), "wrong_shape")
        return None
    kind = chosen[0]
    if kind in COMBINATORS:
        if "path" in shape or "ignore_case" in shape:
            ck.error(shape, f"{where}: '{kind}' takes no path or ignore_case", "wrong_shape")
        return _combinator(ck, kind, shape.get(kind), f"{where}.{kind}")
    return _test(ck, kind, shape, where)


def _combinator(ck: Checker, kind: str, node: Node | None, where: str) -> Condition | None:
    assert node is not None
    if kind == "not":
        inner = compile_condition(ck, node, where)
        return None if inner is None else (lambda payload: not inner(payload))
    items = ck.as_list(node, where)
    if items is None:
        return None
    parts = [compile_condition(ck, item, f"{where}[{i}]") for i, item in enumerate(items)]
    if not parts or any(part is None for part in parts):
        if not parts:
            ck.error(node, f"{where} must list at least one condition", "wrong_shape")
        return None
    checks = tuple(parts)
    if kind == "all":
        return lambda payload: all(check(payload) for check in checks)  # type: ignore[misc]
    return lambda payload: any(check(payload) for check in checks)  # type: ignore[misc]


def _test(ck: Checker, kind: str, shape: Map, where: str) -> Condition | None:
    path_node = ck.need(shape, "path", where)
    path = _path(ck, path_node, f"{where}.path") if path_node is not None else None
    ignore_case = False
    ignore_case_node = shape.get("ignore_case")
    if ignore_case_node is not None:
        ignore_case = bool(ck.boolean(ignore_case_node, f"{where}.ignore_case"))
    arg = shape.get(kind)
    assert arg is not None
    predicate = _predicate(ck, kind, arg, f"{where}.{kind}", ignore_case)
    if path is None or predicate is None:
        return None
    values = path.values
    if kind in ("exists", "empty"):
        return lambda payload: predicate(values(payload))
    return lambda payload: any(predicate(value) for value in values(payload))


def _path(ck: Checker, node: Node, where: str) -> Any:
    text = ck.text(node, where)
    if text is None:
        return None
    if not is_path_text(text.strip()):
        ck.error(node, f"{where}: '{text}' is not a JSONPath (paths start with $. or $[)",
                 "bad_jsonpath")
        return None
    try:
        return cached_path(text.strip())
    except ValueError as exc:
        ck.error(node, f"{where}: bad JSONPath '{text}': {exc}", "bad_jsonpath")
        return None


def _predicate(ck: Checker, kind: str, arg: Node, where: str,
               ignore_case: bool) -> Callable[[Any], bool] | None:
    if kind == "exists":
        wanted = ck.boolean(arg, where)
        return None if wanted is None else (lambda found: bool(found) == wanted)
    if kind == "empty":
        wanted = ck.boolean(arg, where)
        if wanted is None:
            return None
        return lambda found: all(paths.is_empty(v) for v in found) == wanted
    if kind == "matches":
        return _matches(ck, arg, where, ignore_case)
    fold = str.casefold if ignore_case else (lambda text: text)
    if kind == "equals":
        if not isinstance(arg, Scalar):
            ck.error(arg, f"{where} must be text", "wrong_type")
            return None
        items: tuple[Node, ...] | None = (arg,)
    else:
        items = ck.as_list(arg, where)
    if items is None:
        return None
    texts = [ck.text(item, where) for item in items]
    if any(text is None for text in texts):
        return None
    references = [(item, ENV_REF.match(text.strip())) for item, text in zip(items, texts, strict=True)
                  if text is not None]
    looked_up = []
    for item, match in references:
        if match:
            ck.check_env(item, match.group(1))
            looked_up.append(_env_text(match.group(1), ck.env))
    fixed = frozenset(fold(text) for (_, match), text in zip(references, texts, strict=True)
                      if text is not None and not match)
    if not looked_up:
        return lambda value: fold(as_text(value)) in fixed

    def allowed(value: Any) -> bool:
        text = fold(as_text(value))
        if text in fixed:
            return True
        return any((current := lookup()) is not None and fold(current) == text for lookup in looked_up)
    return allowed


def _matches(ck: Checker, arg: Node, where: str, ignore_case: bool) -> Callable[[Any], bool] | None:
    text = ck.text(arg, where)
    if text is None:
        return None
    try:
        pattern = re.compile(text, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        ck.error(arg, f"{where}: bad regular expression '{text}': {exc}", "bad_regex")
        return None
    search = pattern.search
    return lambda value: search(as_text(value)) is not None
