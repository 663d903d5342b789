"""Jinja2 templates in mappings, rendered in a locked-down sandbox.

One immutable sandbox with no loader serves every mapping: templates cannot
include files, reach Python internals or mutate the values they are given.
Unsafe attribute access fails loudly (a refusal with rule ``template``)
instead of rendering as an empty string, so a probing template is visible.
"""
from __future__ import annotations

import operator
from types import BuiltinMethodType
from typing import Any, Mapping

from jinja2 import ChainableUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from relay.mapping.transforms import TransformError

MAX_REPEAT = 10_000  # longest string or list a template may build with '*'
MAX_EXPONENT = 100


class _RelaySandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__} value is not allowed")

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
                raise SecurityError("exponent too large")
            return left ** right
        if _repeat_size(left, right) > MAX_REPEAT:
            raise SecurityError("repeated value too long")
        return operator.mul(left, right)

    # The checks below are the sandbox's own; these overrides only skip repeating them where
    # the answer cannot change. A mapping's templates call str methods on every lead, and
    # the generic checks cost about as much as the rest of the render.

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        kind = type(obj)
        if kind not in _IMMUTABLE_TYPES:
            return super().is_safe_attribute(obj, attr, value)
        # For an immutable builtin the answer depends on its type and the name alone.
        known = _SAFE_ATTRIBUTES.get((kind, attr))
        if known is None:
            known = super().is_safe_attribute(obj, attr, value)
            if len(_SAFE_ATTRIBUTES) < _SAFE_ATTRIBUTES_MAX:
                _SAFE_ATTRIBUTES[(kind, attr)] = known
        return known

    def getattr(self, obj: Any, attribute: str) -> Any:
        # payload.phone on a dict: Jinja tries the attribute first and reads the key after
        # the AttributeError; a key no dict method shadows gives the same answer at once.
        if type(obj) is dict and attribute in obj and not hasattr(dict, attribute):
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # A bound method of a str cannot alter anything, and str.format is already wrapped
        # by getattr before it can be called.
        if (type(__obj) is BuiltinMethodType and type(__obj.__self__) is str
                and __obj.__name__ not in _FORMAT_METHODS):
            return __obj(*args, **kwargs)
        return super().call(__context, __obj, *args, **kwargs)


_IMMUTABLE_TYPES = frozenset({str, int, float, bool, type(None)})
_FORMAT_METHODS = frozenset({"format", "format_map"})
_SAFE_ATTRIBUTES: dict[tuple[type, str], bool] = {}
_SAFE_ATTRIBUTES_MAX = 4096  # names come from mapping files, so a few dozen in practice


def _repeat_size(left: Any, right: Any) -> int:
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, (str, list, tuple)) and isinstance(count, int):
            return len(sequence) * count
    return 0


ENVIRONMENT = _RelaySandbox(autoescape=False, undefined=ChainableUndefined, loader=None)
for _unsafe in ("lipsum", "cycler", "joiner", "namespace"):
    ENVIRONMENT.globals.pop(_unsafe, None)


class CompiledTemplate:
    """A template parsed once; ``names`` are the variables it reads."""

    __slots__ = ("_template", "names", "text")

    def __init__(self, text: str, names: frozenset[str], template: Any) -> None:
        self.text = text
        self.names = names
        self._template = template

    def render(self, context: Mapping[str, Any]) -> str:
        try:
            rendered: str = self._template.render(context)
            return rendered.strip()
        except Exception as error:  # any failure inside a template refuses the lead alike
            raise TransformError("template", f"template failed: {_short(error)}") from None

    def __repr__(self) -> str:
        return f"CompiledTemplate({self.text!r})"


def compile_template(text: str) -> CompiledTemplate:
    try:
        tree = ENVIRONMENT.parse(text)
    except TemplateSyntaxError as error:
        raise ValueError(f"template syntax error (line {error.lineno}): {error.message}") from None
    if any(True for _ in meta.find_referenced_templates(tree)) or _has_node(tree, (nodes.Extends,
                                                                                   nodes.Include,
                                                                                   nodes.Import,
                                                                                   nodes.FromImport)):
        raise ValueError("templates cannot include, import or extend other templates")
    names = frozenset(meta.find_undeclared_variables(tree))
    template = ENVIRONMENT.from_string(tree)
    # Jinja keeps a ChainMap over the environment's globals, copied into every render's
    # context; the globals never change once loaded, so a plain dict copies at a third the cost.
    template.globals = dict(template.globals)
    return CompiledTemplate(text, names, template)


def _has_node(tree: nodes.Template, kinds: tuple[type, ...]) -> bool:
    return any(True for _ in tree.find_all(kinds))


def _short(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:200]
