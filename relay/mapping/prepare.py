"""Payload preparation steps (``prepare:`` in a mapping), each compiled once.

A step takes the freshly parsed payload and returns the prepared payload. It
may change the payload in place: every request gets its own copy.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Callable, NamedTuple

from relay.errors import MalformedBody
from relay.mapping.paths import MISSING, CompiledPath, compile_path, walk

Step = Callable[[Any], Any]
STEP_NAMES: tuple[str, ...] = ("decode_json", "pairs", "brackets", "unwrap_lists")

# Typeform answers keep their value under a key named by the answer's type.
TYPEFORM_VALUE_KEYS: dict[str, tuple[str, ...]] = {
    "text": ("text",), "email": ("email",), "phone_number": ("phone_number",),
    "number": ("number",), "boolean": ("boolean",), "date": ("date",), "url": ("url",),
    "file_url": ("file_url",), "choice": ("choice", "label"), "choices": ("choices", "labels"),
    "payment": ("payment",),
}


def compile_step(name: str, arg: Any | None) -> Step:
    if name == "decode_json":
        return _decode_json(arg)
    if name == "pairs":
        return _pairs(arg)
    if name in ("brackets", "unwrap_lists"):
        if arg is not None:
            raise ValueError(f"prepare step {name!r} takes no argument")
        return nest_brackets if name == "brackets" else unwrap_lists
    raise ValueError(f"unknown prepare step {name!r}; known steps: {', '.join(STEP_NAMES)}")


# --- decode_json ---

def _decode_json(arg: Any) -> Step:
    if not isinstance(arg, str) or not arg:
        raise ValueError("prepare step 'decode_json' needs the name of a top-level key")
    key = arg

    def decode_json(payload: Any) -> Any:
        if isinstance(payload, dict) and isinstance(payload.get(key), str):
            payload[key] = _parse_field_json(key, payload[key])
        return payload

    return decode_json


def _parse_field_json(key: str, text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise MalformedBody(f"field {key!r} is not valid JSON: {error.msg}", field=key,
                            line=error.lineno, column=error.colno) from None
    except (ValueError, RecursionError) as error:
        raise MalformedBody(f"field {key!r} is not valid JSON: {error}", field=key) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


# --- pairs ---

def _pairs(arg: Any) -> Step:
    if not isinstance(arg, dict) or "at" not in arg:
        raise ValueError("prepare step 'pairs' needs {at: <path>, name: <key>, value: <key or auto>}")
    unknown = set(arg) - {"at", "name", "value"}
    if unknown:
        raise ValueError(f"prepare step 'pairs': unknown key {sorted(unknown)[0]!r}")
    name_keys = _dotted(arg.get("name", "name"), "name")
    value_of = _auto_value if arg.get("value") == "auto" else _key_value(_dotted(arg.get("value", "value"), "value"))
    at = _at_path(arg["at"])
    to_mapping = _pairs_converter(name_keys, value_of)

    if at.simple_keys is not None:
        return _replace_at_keys(at.simple_keys, to_mapping)
    return _replace_matches(at, to_mapping)


def _dotted(text: Any, what: str) -> tuple[str, ...]:
    if not isinstance(text, str) or not text.strip() or any(not part for part in text.split(".")):
        raise ValueError(f"prepare step 'pairs': {what} must be a key, or dotted keys like field.ref")
    return tuple(text.split("."))


def _at_path(text: Any) -> CompiledPath:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("prepare step 'pairs': 'at' must be a path like $.field_data")
    text = text.strip()
    if not text.startswith("$"):
        text = "$." + text  # a bare dotted path: form_response.answers
    return compile_path(text)


def _key_value(keys: tuple[str, ...]) -> Callable[[dict[str, Any]], Any]:
    return lambda element: walk(element, keys)


def _auto_value(element: dict[str, Any]) -> Any:
    answer_type = element.get("type")
    keys = TYPEFORM_VALUE_KEYS.get(answer_type) if isinstance(answer_type, str) else None
    if keys is None:
        keys = (answer_type,) if isinstance(answer_type, str) else ()
    value = walk(element, keys) if keys else MISSING
    if value is MISSING and answer_type in ("choice", "choices"):
        value = walk(element, (answer_type, "other"))  # "Other" free-text answers
    return value


def _pairs_converter(name_keys: tuple[str, ...], value_of: Callable[[dict[str, Any]], Any]) -> Callable[[Any], Any]:
    def to_mapping(elements: Any) -> Any:
        if not isinstance(elements, list):
            return elements  # already converted, or absent: nothing to do
        result: dict[str, Any] = {}
        for element in elements:
            if not isinstance(element, dict):
                continue
            name = walk(element, name_keys)
            if name is MISSING or name is None or isinstance(name, (dict, list)):
                continue
            value = value_of(element)
            # First occurrence wins so a repeated name never silently replaces an answer.
            result.setdefault(str(name), None if value is MISSING else value)
        return result

    return to_mapping


def _replace_at_keys(keys: tuple[Any, ...], convert: Callable[[Any], Any]) -> Step:
    if not keys:
        return convert
    parent_keys, last = keys[:-1], keys[-1]

    def pairs(payload: Any) -> Any:
        parent = walk(payload, parent_keys)
        in_dict = isinstance(parent, dict) and isinstance(last, str) and last in parent
        in_list = isinstance(parent, list) and isinstance(last, int) and -len(parent) <= last < len(parent)
        if in_dict or in_list:
            parent[last] = convert(parent[last])
        return payload

    return pairs


def _replace_matches(at: CompiledPath, convert: Callable[[Any], Any]) -> Step:
    expression = at.expression

    def pairs(payload: Any) -> Any:
        for match in expression.find(payload):
            new_value = convert(match.value)
            if new_value is match.value:
                continue
            try:
                payload = match.full_path.update(payload, new_value)
            except (TypeError, KeyError, IndexError, AttributeError):
                continue  # a match jsonpath-ng cannot write back stays as it was
        return payload

    return pairs


# --- brackets ---

_BRACKET_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])+)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def nest_brackets(payload: Any) -> Any:
    """``fields[phone][value]=x`` → ``{"fields": {"phone": {"value": "x"}}}``; ``a[]`` appends.

    A key that would collide with a value already placed keeps its literal name,
    so nothing is overwritten.
    """
    if not isinstance(payload, dict) or not any("[" in key for key in payload):
        return payload
    if len(payload) <= LAYOUT_MAX_KEYS and all(type(value) is str for value in payload.values()):
        # A vendor posts the same form over and over: its nesting is worked out once.
        layout = _layout_of(tuple(payload))
        if layout is not None:
            return _filled(layout, tuple(payload.values()))
    return _nested(payload)


def _nested(payload: dict[str, Any]) -> dict[str, Any]:
    plain = {key for key in payload if "[" not in key or _bracket_key(key) is None}
    result: dict[str, Any] = {}
    # Only these can hold a dict keyed by indexes; a form's text fields never do.
    to_convert: set[str] = set()
    for key, value in payload.items():
        parsed = None if key in plain else _bracket_key(key)
        if parsed is not None and parsed.parts[0] not in plain and _insert(result, parsed, value):
            if parsed.indexed or not isinstance(value, str):
                to_convert.add(parsed.parts[0])
            continue
        # A plain key, or a bracket key that collides: kept under its literal name.
        result.setdefault(key, value)
        if not isinstance(value, str):
            to_convert.add(key)
    for key in to_convert:
        result[key] = _lists_from_indexes(result[key])
    return result


# (key, position of its value in the payload, or the layout of a nested dict), in order.
Layout = tuple[tuple[str, Any], ...]
# What the caches below may hold: a form's keys are few and short, and a request made of
# thousands of long keys must not fill memory with layouts nobody sends twice.
LAYOUT_MAX_KEYS = 256
CACHED_KEY_MAX_CHARS = 200


@lru_cache(maxsize=256)
def _layout_of(keys: tuple[str, ...]) -> Layout | None:
    """Where each value of a text-only payload with these keys lands; None when a key
    appends or indexes (``a[]``, ``a[0]``), whose result depends on more than the keys."""
    parsed = [_bracket_key(key) for key in keys]
    if any(key is not None and (key.appends or key.indexed) for key in parsed):
        return None
    return _layout(_nested({key: _Position(index) for index, key in enumerate(keys)}))


class _Position(int):
    """A value's place in the payload, standing in for the text while the layout is built."""


def _layout(nested: dict[str, Any]) -> Layout:
    return tuple((key, int(value) if isinstance(value, _Position) else _layout(value))
                 for key, value in nested.items())


def _filled(layout: Layout, values: tuple[str, ...]) -> dict[str, Any]:
    return {key: values[where] if type(where) is int else _filled(where, values) for key, where in layout}


class _BracketKey(NamedTuple):
    parts: tuple[str, ...]  # fields[phone][value] -> ("fields", "phone", "value")
    appends: bool  # a part is empty: a[] appends to a list
    indexed: bool  # a part is an index: a[0]


def _bracket_key(key: str) -> _BracketKey | None:
    """The parts of a bracket key, None for a plain key. Cached: a vendor sends the same keys
    with every lead."""
    return _cached_bracket_key(key) if len(key) <= CACHED_KEY_MAX_CHARS else _parse_bracket_key(key)


@lru_cache(maxsize=4096)
def _cached_bracket_key(key: str) -> _BracketKey | None:
    return _parse_bracket_key(key)


def _parse_bracket_key(key: str) -> _BracketKey | None:
    match = _BRACKET_KEY.match(key)
    if match is None:
        return None
    parts = (match.group(1), *_SEGMENT.findall(match.group(2)))
    return _BracketKey(parts, "" in parts, any(part.isdigit() for part in parts[1:]))


def _insert(container: dict[str, Any], key: _BracketKey, value: Any) -> bool:
    """Place ``value`` at ``key.parts`` below ``container``; False on a collision."""
    if key.appends:
        return _insert_appending(container, key.parts, value)
    parts = key.parts
    below: Any = container
    for part in parts[:-1]:
        child = below.get(part)
        if child is None:
            child = below[part] = {}
        elif not isinstance(child, dict):
            return False
        below = child
    if parts[-1] in below:
        return False
    below[parts[-1]] = value
    return True


def _insert_appending(container: Any, parts: tuple[str, ...], value: Any) -> bool:
    """:func:`_insert` for keys with ``[]``, which make and extend lists."""
    part, rest = parts[0], parts[1:]
    if isinstance(container, list):
        if part != "":
            return False
        if not rest:
            container.extend(value if isinstance(value, list) else [value])
            return True
        child: Any = [] if rest[0] == "" else {}
        container.append(child)
        return _insert_appending(child, rest, value)
    if part == "":
        return False
    if not rest:
        if part in container:
            return False
        container[part] = value
        return True
    child = container.get(part)
    if child is None:
        child = container[part] = [] if rest[0] == "" else {}
    elif isinstance(child, list) != (rest[0] == "") or not isinstance(child, (dict, list)):
        return False
    return _insert_appending(child, rest, value)


def _lists_from_indexes(value: Any) -> Any:
    """Dicts keyed only by indexes (``a[0]``, ``a[1]``) become lists, in index order."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [_lists_from_indexes(item) for item in value]
    if not isinstance(value, dict):
        return value
    converted = {key: _lists_from_indexes(item) for key, item in value.items()}
    if converted and all(isinstance(key, str) and key.isascii() and key.isdigit() and len(key) < 7
                         for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


# --- unwrap_lists ---

def unwrap_lists(value: Any) -> Any:
    """Every one-element list becomes its element, all the way down (in place)."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, list) and len(item) == 1 and not isinstance(item[0], (list, dict)):
                value[key] = item[0]  # the common form field ["x"], without a call per field
            elif isinstance(item, (list, dict)):
                value[key] = unwrap_lists(item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, (list, dict)):
                value[index] = unwrap_lists(item)
    return value
