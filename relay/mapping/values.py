"""Value specs: where a lead field's value comes from, and how it is shaped.

A spec is written as a JSONPath (``$.phone``), a list of fallbacks (paths,
templates and a last constant, first non-empty wins), a template (any text
with ``{{``), a constant, or the explicit mapping form. It compiles to a
:class:`Field` whose ``read`` closure does the least possible work per lead:
the spec's form is decided once, here.
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

EXPLICIT_KEYS = ("path", "value", "template", "transform", "required", "default", "ignore_case")
TEMPLATE_AS_CONSTANT = "template_as_constant"  # a lint warning: {% %} without {{ }} is plain text


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
    reads_empty: bool = False  # a transform (present) runs on an empty value too
    reads_payload: bool = False  # a transform (choice) reads the payload besides the value

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
        if value is None and not field.reads_empty:
            return _empty(field)
    if field.transforms:
        try:
            if field.reads_empty or field.reads_payload:
                value = _apply_steps(field.transforms, value, payload)
            else:
                for transform in field.transforms:
                    value = transform(value)
        except transforms.TransformError as error:
            raise FieldRefused(field, error.rule, refusal_message(field, error.message)) from None
        if is_empty(value):
            return _empty(field)
    return value


def _apply_steps(steps: tuple[Transform, ...], value: Any, payload: Any) -> Any:
    for step in steps:
        value = step.apply(value, payload) if isinstance(step, transforms.Step) else step(value)
    return value


def _empty(field: Field) -> None:
    if field.required:
        raise FieldRefused(field, "required", required_message(field))
    return None


def refusal_message(field: Field, problem: str) -> str:
    where = f" (from {', '.join(field.paths)})" if field.paths else ""
    return f"{field.name}: {problem}{where}"


def required_message(field: Field) -> str:
    if isinstance(field.template, Fallbacks):
        return f"{field.name} is required but every fallback was empty: {field.template.text}"
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
        return _from_paths(ck, name, target, node, where)
    if node.is_null:
        ck.error(node, f"{where} has no value: write a path, a template, a constant or the "
                       "explicit form", "wrong_type")
        return None
    if is_path_text(node.text.strip()):
        return _from_paths(ck, name, target, node, where)
    if "{{" in node.text:
        return _from_template(ck, name, target, node, where, (), False, None)
    _warn_template_as_constant(ck, node, where)
    return _constant(name, target, node, (), False)


def _warn_template_as_constant(ck: Checker, node: Scalar, where: str) -> None:
    if "{%" in node.text and "{{" not in node.text:
        ck.error(node, f"warning: {where} has {{% %}} but no {{{{ }}}}, so it is sent as this constant "
                       "text; write the value to send inside {{ }}", TEMPLATE_AS_CONSTANT)


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
    ignore_case = _ignore_case(ck, node, where, sources[0])
    source_key = sources[0]
    value_node = node.get(source_key)
    assert value_node is not None
    field = _source_field(ck, name, target, source_key, value_node, f"{where}.{source_key}",
                          ignore_case=bool(ignore_case))
    if field is None or steps is None or required is None or ignore_case is None:
        return None
    return dataclasses.replace(
        field, transforms=steps, required=required, default=default,
        reads_empty=any(getattr(step, "reads_empty", False) for step in steps),
        reads_payload=any(getattr(step, "reads_payload", False) for step in steps))


def _ignore_case(ck: Checker, node: Map, where: str, source_key: str) -> bool | None:
    flag_node = node.get("ignore_case")
    if flag_node is None:
        return False
    flag = ck.boolean(flag_node, f"{where}.ignore_case")
    if flag and source_key != "path":
        ck.error(flag_node, f"{where}.ignore_case applies to path, not {source_key}", "wrong_shape")
        return None
    return flag


def _source_field(ck: Checker, name: str, target: str, key: str, node: Node,
                  where: str, *, ignore_case: bool = False) -> Field | None:
    if key == "path":
        return _from_paths(ck, name, target, node, where, ignore_case=ignore_case)
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


def _from_paths(ck: Checker, name: str, target: str, node: Node, where: str, *,
                ignore_case: bool = False) -> Field | None:
    items = ck.as_items(node, where)
    if isinstance(node, Seq) and any(_is_fallback(item) for item in items):
        return _from_fallbacks(ck, name, target, node, items, where, ignore_case)
    compiled = []
    for item in items:
        text = ck.text(item, where)
        if text is None:
            continue
        compiled_path = _compile_path(ck, item, text.strip(), where, ignore_case)
        if compiled_path is not None:
            compiled.append(compiled_path)
    if not compiled or len(compiled) != len(items):
        return None
    keys = _verbatim_keys(compiled)
    return Field(name, target, _reader(tuple(compiled)), (), False, None,
                 tuple(p.text for p in compiled), simple_keys=keys,
                 line=node.line, column=node.column)


def _verbatim_keys(compiled: list[Any]) -> tuple[tuple[Any, ...], ...]:
    # A path read ignoring case may match another spelling: passthrough cannot know which.
    return tuple(p.simple_keys for p in compiled if p.simple_keys and not isinstance(p, paths.FoldedPath))


def _is_fallback(node: Node) -> bool:
    """A list item that is a template or a constant rather than a path."""
    return isinstance(node, Scalar) and not node.is_null and not is_path_text(node.text.strip())


def _compile_path(ck: Checker, node: Node, text: str, where: str, ignore_case: bool = False) -> Any:
    if not is_path_text(text):
        ck.error(node, f"{where}: '{text}' is not a JSONPath (paths start with $. or $[)",
                 "bad_jsonpath")
        return None
    try:
        return paths.compile_folded_path(text) if ignore_case else cached_path(text)
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


class Fallbacks:
    """Alternatives tried in order, rendered like a template: the first non-empty value wins.

    Paths read the payload, templates render with the same context as a template
    field (earlier values and ``payload``), a constant ends the list.
    """

    __slots__ = ("alternatives", "names", "text")

    def __init__(self, alternatives: tuple[Any, ...], text: str) -> None:
        self.alternatives = alternatives  # CompiledPath | CompiledTemplate | str, in order
        self.text = text
        self.names = frozenset().union(*(item.names for item in alternatives
                                         if isinstance(item, templates.CompiledTemplate)))

    def render(self, context: dict[str, Any]) -> Any:
        payload = context.get("payload")
        for item in self.alternatives:
            if isinstance(item, paths.CompiledPath):
                found = item.values(payload)
                value = found[0] if len(found) == 1 else (found or None)
            elif isinstance(item, templates.CompiledTemplate):
                value = item.render(context)
            else:
                value = item
            if not is_empty(value):
                return value
        return None

    def __repr__(self) -> str:
        return f"Fallbacks({self.text})"


def _from_fallbacks(ck: Checker, name: str, target: str, node: Node, items: tuple[Node, ...],
                    where: str, ignore_case: bool) -> Field | None:
    alternatives: list[Any] = []
    for index, item in enumerate(items):
        at = f"{where}[{index}]"
        text = ck.text(item, at)
        if text is None:
            return None
        if is_path_text(text.strip()):
            alternatives.append(_compile_path(ck, item, text.strip(), at, ignore_case))
        elif "{{" in text:
            alternatives.append(_fallback_template(ck, item, text, at))
        else:
            assert isinstance(item, Scalar)
            if index != len(items) - 1:
                ck.error(item, f"{at}: the constant '{text}' must come last: nothing after it is ever "
                               "read (or is it a path missing its $.?)", "wrong_shape")
                return None
            _warn_template_as_constant(ck, item, at)
            alternatives.append(text)
    if any(item is None for item in alternatives):
        return None
    compiled_paths = [item for item in alternatives if isinstance(item, paths.CompiledPath)]
    fallbacks = Fallbacks(tuple(alternatives), ", ".join(ck.text(item, where) or "" for item in items))
    return Field(name, target, _no_read, (), False, None, tuple(p.text for p in compiled_paths),
                 template=fallbacks, simple_keys=_verbatim_keys(compiled_paths),
                 line=node.line, column=node.column)


def _fallback_template(ck: Checker, node: Node, text: str, where: str) -> Any:
    try:
        return cached_template(text)
    except Exception as exc:  # the template module reports syntax errors its own way
        ck.error(node, f"{where}: template error: {_describe(exc)}", "template_error")
        return None


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
