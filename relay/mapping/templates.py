"""Jinja2 templates in mappings, rendered in a locked-down sandbox.

One immutable sandbox with no loader serves every mapping: templates cannot
include files, reach Python internals or mutate the values they are given.
Unsafe attribute access fails loudly (a refusal with rule ``template``)
instead of rendering as an empty string, so a probing template is visible.
"""
from __future__ import annotations

import operator
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
    return CompiledTemplate(text, names, ENVIRONMENT.from_string(tree))


def _has_node(tree: nodes.Template, kinds: tuple[type, ...]) -> bool:
    return any(True for _ in tree.find_all(kinds))


def _short(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:200]
