"""Flatten nested vendor data into Trackdrive token names.

Trackdrive offers ``auto_format_nested_fields`` but never says what it does, so
the relay flattens nested data itself and always sends a flat ``data`` hash:
``{"address": {"city": "Austin"}}`` becomes ``address_city``.
"""
from __future__ import annotations

import json
import re
import unicodedata
from fnmatch import translate
from functools import lru_cache
from typing import Any, Collection, Sequence

from relay.mapping.paths import is_empty

TOKEN_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

_CAMEL_LOWER_UPPER = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_CAMEL_ACRONYM = re.compile(r"(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_TOKEN = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=4096)
def _part_name(part: str | int) -> str:
    if isinstance(part, int):
        return str(part)
    ascii_text = unicodedata.normalize("NFKD", part).encode("ascii", "ignore").decode("ascii")
    spaced = _CAMEL_ACRONYM.sub("_", _CAMEL_LOWER_UPPER.sub("_", ascii_text))
    return _NOT_TOKEN.sub("_", spaced.lower()).strip("_")


def token_name(parts: Sequence[str | int]) -> str:
    """Lowercase snake_case name for a key chain; "" when nothing usable is left."""
    return _token_name(tuple(parts))


@lru_cache(maxsize=8192)
def _token_name(parts: tuple[str | int, ...]) -> str:
    name = "_".join(piece for piece in map(_part_name, parts) if piece)
    if name and not name[0].isalpha():
        name = "f_" + name
    return name


def flatten(payload: Any, *, max_depth: int = 3, include: Sequence[str] = (),
            exclude: Sequence[str] = (), skip: Collection[tuple[Any, ...]] = ()) -> tuple[dict[str, Any], list[str]]:
    """(tokens, clashes): scalar tokens from nested data; clashes name tokens given twice."""
    skip_set = skip if isinstance(skip, (set, frozenset)) else frozenset(skip)
    flattener = _Flattener(max_depth, _globs(tuple(include)), _globs(tuple(exclude)), skip_set)
    if isinstance(payload, (dict, list)):
        flattener.walk(payload, ())
    return flattener.tokens, flattener.clashes


class _Flattener:
    def __init__(self, max_depth: int, include: re.Pattern[str] | None, exclude: re.Pattern[str] | None,
                 skip: Collection[tuple[Any, ...]]) -> None:
        self.max_depth = max(1, max_depth)
        self.include = include
        self.exclude = exclude
        self.skip = skip
        self.tokens: dict[str, Any] = {}
        self.clashes: list[str] = []

    def walk(self, value: Any, keys: tuple[Any, ...]) -> None:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            child_keys = (*keys, key)
            if child_keys in self.skip or is_empty(child):
                continue
            if isinstance(child, (dict, list)):
                if len(child_keys) < self.max_depth:
                    self.walk(child, child_keys)
                else:
                    self.add(child_keys, json.dumps(child, ensure_ascii=False, separators=(",", ":"),
                                                    default=str))
            elif isinstance(child, (str, int, float, bool)):
                self.add(child_keys, child)
            else:
                self.add(child_keys, str(child))

    def add(self, keys: tuple[Any, ...], value: Any) -> None:
        name = _token_name(keys)
        if not name or not self.wanted(name):
            return
        if name in self.tokens:
            if name not in self.clashes:
                self.clashes.append(name)
            return
        self.tokens[name] = value

    def wanted(self, name: str) -> bool:
        if self.include is not None and not self.include.match(name):
            return False
        return self.exclude is None or not self.exclude.match(name)


@lru_cache(maxsize=256)
def _globs(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex for a set of fnmatch globs; mappings reuse the same few sets."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{translate(pattern)})" for pattern in patterns))
