"""JSONPath access into a prepared payload.

Most mapping paths are plain chains of keys (``$.form.phone``, ``$['First Name']``,
``$.items[0]``). Those are walked directly over dicts and lists, which is an
order of magnitude cheaper than a jsonpath-ng ``find()``. So is the form vendors
use to pick one field out of a list (``$.fields[?(@.key=='q1')].value``: a key chain,
one filter of string equalities, a key chain). Anything richer (wildcards, other
filters, slices, ``..``) is parsed once by ``jsonpath_ng.ext``.

A simple path may also be read ignoring case (a field's ``ignore_case: true``):
the exact key is tried first, so a payload spelt as the mapping expects costs
nothing more; otherwise ``Phone``, ``PHONE`` and ``phone `` all answer ``$.phone``.
"""
from __future__ import annotations

import re
from typing import Any

from jsonpath_ng.ext import parse as _parse_jsonpath

Key = str | int

# One segment of a simple path; the alternatives mirror jsonpath-ng's own lexer.
_SEGMENT = re.compile(
    r"""\.(?P<name>[A-Za-z_][A-Za-z0-9_\-]*)
      | \."(?P<dq>[^"\\]*)"
      | \.'(?P<sq>[^'\\]*)'
      | \[\s*'(?P<bsq>[^'\\]*)'\s*\]
      | \[\s*"(?P<bdq>[^"\\]*)"\s*\]
      | \[\s*(?P<index>-?\d+)\s*\]""",
    re.VERBOSE,
)
MISSING: Any = object()  # what walk() returns when a key is absent


def simple_keys_of(text: str) -> tuple[Key, ...] | None:
    """The key chain of a simple path, or None when the path needs jsonpath-ng."""
    if not text.startswith("$"):
        return None
    keys: list[Key] = []
    position = 1
    while position < len(text):
        match = _SEGMENT.match(text, position)
        if match is None:
            return None
        index = match.group("index")
        if index is not None:
            keys.append(int(index))
        else:
            keys.append(next(g for g in match.group("name", "dq", "sq", "bsq", "bdq") if g is not None))
        position = match.end()
    return tuple(keys)


def walk(payload: Any, keys: tuple[Key, ...]) -> Any:
    """The value at ``keys`` or ``MISSING``; names never index lists, indexes never index dicts."""
    value = payload
    for key in keys:
        if isinstance(key, int):
            if not isinstance(value, list) or not -len(value) <= key < len(value):
                return MISSING
            value = value[key]
        elif isinstance(value, dict):
            value = value.get(key, MISSING)
            if value is MISSING:
                return MISSING
        else:
            return MISSING
    return value


def fold(key: str) -> str:
    return key.strip().casefold()


def walk_folded(payload: Any, keys: tuple[Key, ...]) -> Any:
    """Like :func:`walk`, but a name missing verbatim matches the first key equal to it
    once both are stripped and case-folded."""
    value = payload
    for key in keys:
        if isinstance(key, int) or not isinstance(value, dict):
            value = walk(value, (key,))
        elif key in value:
            value = value[key]
        else:
            wanted = fold(key)
            value = next((item for name, item in value.items()
                          if isinstance(name, str) and fold(name) == wanted), MISSING)
        if value is MISSING:
            return MISSING
    return value


class CompiledPath:
    """A JSONPath compiled once; ``values()`` returns every match, in order."""

    __slots__ = ("expression", "simple_keys", "text")

    def __init__(self, text: str, simple_keys: tuple[Key, ...] | None, expression: Any) -> None:
        self.text = text
        self.simple_keys = simple_keys
        self.expression = expression

    def values(self, payload: Any) -> list[Any]:
        if self.simple_keys is not None:
            value = walk(payload, self.simple_keys)
            return [] if value is MISSING else [value]
        return [match.value for match in self.expression.find(payload)]

    def __repr__(self) -> str:
        return f"CompiledPath({self.text!r})"


class FilteredPath(CompiledPath):
    """``$.a.b[?(@.k=='v' && ...)].c``: a chain of keys, a filter of string equalities, a chain.

    The form vendors use to pick a field out of a list by its key or type. Walked directly, it
    costs a tenth of jsonpath-ng's ``find()``; it gives exactly what that would (jsonpath-ng's
    expression stays for anything that writes through the path).
    """

    __slots__ = ("prefix", "suffix", "tests")

    def __init__(self, text: str, expression: Any, prefix: tuple[Key, ...],
                 tests: tuple[tuple[str, str], ...], suffix: tuple[Key, ...]) -> None:
        super().__init__(text, None, expression)
        self.prefix = prefix
        self.tests = tests
        self.suffix = suffix

    def values(self, payload: Any) -> list[Any]:
        base = walk(payload, self.prefix)
        if isinstance(base, dict):
            candidates: Any = base.values()
        elif isinstance(base, list):
            candidates = base
        else:
            return []
        found = []
        tests, suffix = self.tests, self.suffix
        for element in candidates:
            if not isinstance(element, dict):
                continue
            # Each literal is a str, and a str equals only a str: never a number, as RFC 9535
            # has it. A plain loop: this runs for every element of a form's field list.
            for key, literal in tests:
                if element.get(key) != literal:
                    break
            else:
                value = walk(element, suffix) if suffix else element
                if value is not MISSING:
                    found.append(value)
        return found

    def __repr__(self) -> str:
        return f"FilteredPath({self.text!r})"


_FILTER = re.compile(r"^(?P<prefix>\$[^\[?]*(?:\[[^?\]][^\]]*\][^\[?]*)*)\[\?\((?P<tests>[^()]*)\)\](?P<suffix>.*)$")
_EQUALS = re.compile(r"""^\s*@\.(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*==\s*(?:'(?P<sq>[^'\\]*)'|"(?P<dq>[^"\\]*)")\s*$""")


def filtered_parts(text: str) -> tuple[tuple[Key, ...], tuple[tuple[str, str], ...], tuple[Key, ...]] | None:
    """(prefix keys, (key, literal) tests, suffix keys) of a path FilteredPath can walk, else None."""
    match = _FILTER.match(text)
    if match is None:
        return None
    prefix = simple_keys_of(match.group("prefix"))
    suffix = simple_keys_of("$" + match.group("suffix"))
    tests = []
    for part in match.group("tests").split("&&"):
        equals = _EQUALS.match(part)
        if equals is None:
            return None
        literal = equals.group("sq") if equals.group("sq") is not None else equals.group("dq")
        tests.append((equals.group("key"), literal))
    if prefix is None or suffix is None or not tests:
        return None
    return prefix, tuple(tests), suffix


class FoldedPath(CompiledPath):
    """A simple path whose names match keys ignoring case and surrounding spaces."""

    __slots__ = ()

    def values(self, payload: Any) -> list[Any]:
        assert self.simple_keys is not None
        value = walk_folded(payload, self.simple_keys)
        return [] if value is MISSING else [value]

    def __repr__(self) -> str:
        return f"FoldedPath({self.text!r})"


def compile_folded_path(text: str) -> FoldedPath:
    """A simple path read ignoring case; ValueError for any path jsonpath-ng would need."""
    text = text.strip()
    keys = simple_keys_of(text)
    if keys is None:
        raise ValueError(f"ignore_case works with simple paths only (names and indexes, like "
                         f"$.lead.phone or $.items[0]), not {text!r}")
    return FoldedPath(text, keys, None)


def compile_path(text: str) -> CompiledPath:
    text = text.strip()
    keys = simple_keys_of(text)
    if keys is not None:
        return CompiledPath(text, keys, None)
    try:
        expression = _parse_jsonpath(text)
    except Exception as error:  # jsonpath-ng raises several unrelated types
        raise ValueError(f"invalid JSONPath {text!r}: {_first_line(error)}") from None
    parts = filtered_parts(text)
    if parts is not None:
        return FilteredPath(text, expression, *parts)
    return CompiledPath(text, None, expression)


def is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, dict, tuple)):
        return not value
    return False


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
