"""Value specs: where a lead field's value comes from, and how it is shaped.

A spec is written as a JSONPath (``$.phone``), a list of fallback paths, a
template (any text with ``{{``), a constant, or the explicit mapping form. It
compiles to a :class:`Field` whose ``read`` closure does the least possible
work per lead: the spec's form is decided once, here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from relay.mapping import paths, templates, transforms
from relay.mapping.checks import Checker, closest
from relay.mapping.yamlload import Map, Node, Scalar, Seq, to_python

Reader = Callable[[Any], Any]
is_empty = paths.is_empty
Transform = Callable[[Any], Any]

EXPLICIT_KEYS = ("path", "value", "template", "transform", "required", "default")


@lru_cache(maxsize=4096)
def cached_path(text: str) -> paths.CompiledPath:
    return paths.compile_path(text)


@lru_cache(maxsize=4096)
def cached_template(text: str) -> templates.CompiledTemplate:
    return templates.compile_template(text)


@dataclass(frozen=True)
class Field:
    name: str
    target: str  # "lead" | "data" | "key"
    read: Reader  # payload -> raw value, None when nothing was found
    transforms: tuple[Transform, ...]
    required: bool
    default: Any
    paths: tuple[str, ...]  # as written, for refusal messages
    template: Any = None  # a CompiledTemplate; rendered with the context instead of read
    constant: Any = None  # the constant's text when the spec is a constant
    simple_keys: tuple[tuple[Any, ...], ...] = ()  # payload keys read verbatim (passthrough skips them)
    line: int = 1
    column: int = 1

    @property
    def is_template(self) -> bool:
        return self.template is not None


class FieldRefused(Exception):
    """Internal signal: caught by the plan runner and turned into a Refusal."""

    def __init__(self, field: Field, rule: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule
        self.message = message


def resolve(field: Field, payload: Any, context: dict[str, Any]) -> Any:
    """The field's final value, or None when it is empty and not required."""
    if field.template is None:
        value = field.read(payload)
    else:
        try:
            value = field.template.render(context)
        except transforms.TransformError as error:
            raise FieldRefused(field, error.rule, refusal_message(field, error.message)) from None
    if is_empty(value):
        value = field.default
        if value is None:
            return _empty(field)
    if field.transforms:
        try:
            for transform in field.transforms:
                value = transform(value)
        except transforms.TransformError as error:
            raise FieldRefused(field, error.rule, refusal_message(field, error.message)) from None
        if is_empty(value):
            return _empty(field)
    return value


def _empty(field: Field) -> None:
    if field.required:
        raise FieldRefused(field, "required", required_message(field))
    return None


def refusal_message(field: Field, problem: str) -> str:
    where = f" (from {', '.join(field.paths)})" if field.paths else ""
    return f"{field.name}: {problem}{where}"


def required_message(field: Field) -> str:
    if field.paths:
        return f"{field.name} is required but every path was empty: {', '.join(field.paths)}"
    if field.template is not None:
        return f"{field.name} is required but its template rendered empty"
    return f"{field.name} is required but its value is empty"


# --- compiling ---

def is_path_text(text: str) -> bool:
    return text == "$" or text.startswith(("$.", "$["))


def compile_field(ck: Checker, name: str, target: str, node: Node, where: str,
                  *, phone_region: str) -> Field | None:
    if isinstance(node, Map):
        return _explicit(ck, name, target, node, where, phone_region=phone_region)
    if isinstance(node, Seq):
        return _from_paths(ck, name, target, node, where, (), False, None)
    if node.is_null:
        ck.error(node, f"{where} has no value: write a path, a template, a constant or the "
                       "explicit form", "wrong_type")
        return None
    if is_path_text(node.text.strip()):
        return _from_paths(ck, name, target, node, where, (), False, None)
    if "{{" in node.text:
        return _from_template(ck, name, target, node, where, (), False, None)
    return _constant(name, target, node, (), False)


def _explicit(ck: Checker, name: str, target: str, node: Map, where: str,
              *, phone_region: str) -> Field | None:
    ck.keys(node, EXPLICIT_KEYS, where)
    sources = [key for key in ("path", "value", "template") if key in node]
    if len(sources) != 1:
        ck.error(node, f"{where} needs exactly one of path, value or template"
                       + (f" (found {', '.join(sources)})" if sources else ""), "wrong_shape")
        return None
    required = _required(ck, node, where)
    default = _default(ck, node, where)
    steps = compile_transforms(ck, node.get("transform"), f"{where}.transform",
                               phone_region=phone_region)
    source_key = sources[0]
    value_node = node.get(source_key)
    assert value_node is not None
    field = _source_field(ck, name, target, source_key, value_node, f"{where}.{source_key}")
    if field is None or steps is None or required is None:
        return None
    return dataclasses.replace(field, transforms=steps, required=required, default=default)


def _source_field(ck: Checker, name: str, target: str, key: str, node: Node,
                  where: str) -> Field | None:
    if key == "path":
        return _from_paths(ck, name, target, node, where, (), False, None)
    if key == "template":
        return _from_template(ck, name, target, node, where, (), False, None)
    if not isinstance(node, Scalar) or node.is_null:
        ck.error(node, f"{where} must be text", "wrong_type")
        return None
    return _constant(name, target, node, (), False)


def _required(ck: Checker, node: Map, where: str) -> bool | None:
    required_node = node.get("required")
    if required_node is None:
        return False
    return ck.boolean(required_node, f"{where}.required")


def _default(ck: Checker, node: Map, where: str) -> Any:
    default_node = node.get("default")
    if default_node is None:
        return None
    if not isinstance(default_node, Scalar):
        ck.error(default_node, f"{where}.default must be text", "wrong_type")
        return None
    default = to_python(default_node)
    return None if is_empty(default) else default


def _from_paths(ck: Checker, name: str, target: str, node: Node, where: str,
                steps: tuple[Transform, ...], required: bool, default: Any) -> Field | None:
    compiled = []
    items = ck.as_items(node, where)
    for item in items:
        text = ck.text(item, where)
        if text is None:
            continue
        compiled_path = _compile_path(ck, item, text.strip(), where)
        if compiled_path is not None:
            compiled.append(compiled_path)
    if not compiled or len(compiled) != len(items):
        return None
    keys = tuple(p.simple_keys for p in compiled if p.simple_keys)
    return Field(name, target, _reader(tuple(compiled)), steps, required, default,
                 tuple(p.text for p in compiled), simple_keys=keys,
                 line=node.line, column=node.column)


def _compile_path(ck: Checker, node: Node, text: str, where: str) -> Any:
    if not is_path_text(text):
        ck.error(node, f"{where}: '{text}' is not a JSONPath (paths start with $. or $[)",
                 "bad_jsonpath")
        return None
    try:
        return cached_path(text)
    except ValueError as exc:
        ck.error(node, f"{where}: bad JSONPath '{text}': {exc}", "bad_jsonpath")
        return None


def _reader(compiled: tuple[Any, ...]) -> Reader:
    if len(compiled) == 1:
        only = compiled[0].values

        def read_one(payload: Any) -> Any:
            found = only(payload)
            if not found:
                return None
            return found[0] if len(found) == 1 else found
        return read_one

    readers = tuple(p.values for p in compiled)

    def read_first(payload: Any) -> Any:
        for values in readers:
            found = values(payload)
            value = found[0] if len(found) == 1 else (found or None)
            if not is_empty(value):
                return value
        return None
    return read_first


def _from_template(ck: Checker, name: str, target: str, node: Node, where: str,
                   steps: tuple[Transform, ...], required: bool, default: Any) -> Field | None:
    text = ck.text(node, where)
    if text is None:
        return None
    try:
        template = cached_template(text)
    except Exception as exc:  # the template module reports syntax errors its own way
        ck.error(node, f"{where}: template error: {_describe(exc)}", "template_error")
        return None
    return Field(name, target, _no_read, steps, required, default, (), template=template,
                 line=node.line, column=node.column)


def _no_read(payload: Any) -> None:
    return None


def _constant(name: str, target: str, node: Scalar, steps: tuple[Transform, ...],
              required: bool) -> Field:
    text = node.text

    def read_constant(payload: Any) -> str:
        return text
    return Field(name, target, read_constant, steps, required, None, (), constant=text,
                 line=node.line, column=node.column)


def compile_transforms(ck: Checker, node: Node | None, where: str,
                       *, phone_region: str) -> tuple[Transform, ...] | None:
    if node is None:
        return ()
    steps: list[Transform] = []
    ok = True
    for item in ck.as_items(node, where):
        step = _transform(ck, item, where, phone_region=phone_region)
        ok = ok and step is not None
        if step is not None:
            steps.append(step)
    return tuple(steps) if ok else None


def _transform(ck: Checker, node: Node, where: str, *, phone_region: str) -> Transform | None:
    if isinstance(node, Map) and len(node.entries) == 1:
        (name, (key_node, arg_node)), = node.entries.items()
        arg = to_python(arg_node)
        at: Node = key_node
    elif isinstance(node, Scalar) and not node.is_null:
        name, arg, at = node.text.strip(), None, node
    else:
        ck.error(node, f"{where}: a transform is a name or a one-key mapping {{name: argument}}",
                 "wrong_shape")
        return None
    if name not in transforms.TRANSFORM_NAMES:
        hint = closest(name, transforms.TRANSFORM_NAMES)
        ck.error(at, f"{where}: unknown transform '{name}'"
                     + (f"; did you mean '{hint}'?" if hint else ""), "unknown_transform")
        return None
    try:
        return transforms.compile_transform(name, arg, phone_region=phone_region)
    except ValueError as exc:
        ck.error(at, f"{where}: bad argument for {name}: {exc}", "bad_argument")
        return None


def _describe(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc)
