"""Strict YAML loading that keeps every value's place in the file.

The tree is built from YAML's event stream (the same parser ``yaml.compose``
drives) because composing resolves aliases silently: only the events still say
where an anchor, an alias or an explicit tag was written. Scalars are never
type-guessed: ``01234``, ``yes``, ``on`` and ``1e3`` all stay text, and the
mapping schema decides what a value means.

Anchors, aliases, merge keys, explicit tags, duplicate keys, non-text keys and
extra documents are refused: each is a way to hide a mistake in a mapping.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import yaml

from relay.mapping.model import Problem

try:  # libyaml is much faster; the pure parser gives the same events
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

NULL_WORDS = frozenset({"", "~", "null", "Null", "NULL"})


@dataclass(frozen=True)
class Scalar:
    text: str
    line: int
    column: int
    plain: bool = True  # unquoted: only then can it mean "nothing"

    @property
    def is_null(self) -> bool:
        return self.plain and self.text in NULL_WORDS


@dataclass(frozen=True)
class Seq:
    items: tuple[Node, ...]
    line: int
    column: int


@dataclass(frozen=True)
class Map:
    entries: dict[str, tuple[Scalar, Node]] = field(hash=False)
    line: int = 1
    column: int = 1

    def get(self, key: str) -> Node | None:
        entry = self.entries.get(key)
        return entry[1] if entry else None

    def key_node(self, key: str) -> Scalar:
        return self.entries[key][0]

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def items(self) -> Iterator[tuple[str, Node]]:
        for key, (_, value) in self.entries.items():
            yield key, value


Node = Scalar | Seq | Map


def to_python(node: Node) -> object:
    """Plain Python (text, lists, dicts) for a node; null scalars become None."""
    if isinstance(node, Scalar):
        return None if node.is_null else node.text
    if isinstance(node, Seq):
        return [to_python(item) for item in node.items]
    return {key: to_python(value) for key, value in node.items()}


def kind_of(node: Node) -> str:
    if isinstance(node, Map):
        return "a mapping"
    if isinstance(node, Seq):
        return "a list"
    return "empty" if node.is_null else "text"


def load_yaml(text: str, file: str) -> tuple[Node | None, list[Problem]]:
    """The document's tree and every problem found; the tree is None on a syntax error."""
    builder = _TreeBuilder(file)
    try:
        root = builder.build(yaml.parse(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        message += _flow_hint(text, line)
        builder.problems.append(Problem(file, line, column, f"YAML syntax: {message}", "yaml_error"))
        return None, builder.problems
    except yaml.YAMLError as exc:
        builder.problems.append(Problem(file, 1, 1, f"YAML syntax: {exc}", "yaml_error"))
        return None, builder.problems
    return root, builder.problems


def _flow_hint(text: str, line: int) -> str:
    lines = text.splitlines()
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    if "$" in source_line and ("{" in source_line or "[" in source_line):
        # inside [..] or {..} YAML reads { } [ ] as structure, not as part of the text
        return ("; inside [...] or {...} put ${ENV} references and bracketed paths in quotes, "
                "e.g. \"${NAME}\" or \"$['First Name']\"")
    return ""


class _TreeBuilder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def problem(self, event: yaml.Event, message: str, code: str) -> None:
        line, column = _position(event)
        self.problems.append(Problem(self.file, line, column, message, code))

    def build(self, events: Iterator[yaml.Event]) -> Node | None:
        root: Node | None = None
        documents = 0
        stream = iter(events)
        for event in stream:
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents == 2:
                    self.problem(event, "only one YAML document is allowed per mapping file",
                                 "multiple_documents")
            elif isinstance(event, (yaml.ScalarEvent, yaml.SequenceStartEvent,
                                    yaml.MappingStartEvent, yaml.AliasEvent)):
                node = self.node(event, stream)
                if documents == 1:
                    root = node
        return root

    def node(self, event: yaml.Event, stream: Iterator[yaml.Event]) -> Node:
        self.check_decorations(event)
        line, column = _position(event)
        if isinstance(event, yaml.ScalarEvent):
            return Scalar(event.value, line, column, plain=not event.style)
        if isinstance(event, yaml.SequenceStartEvent):
            return self.sequence(event, stream)
        if isinstance(event, yaml.MappingStartEvent):
            return self.mapping(event, stream)
        # an alias: reported above; stands for nothing
        return Scalar("", line, column)

    def check_decorations(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.AliasEvent):
            self.problem(event, f"aliases (*{event.anchor}) are not allowed: write the value out",
                         "alias")
            return
        anchor = getattr(event, "anchor", None)
        if anchor:
            self.problem(event, f"anchors (&{anchor}) are not allowed: write values out",
                         "anchor")
        tag = getattr(event, "tag", None)
        if tag not in (None, "!"):
            self.problem(event, f"YAML tags ({tag}) are not allowed", "yaml_tag")

    def sequence(self, start: yaml.Event, stream: Iterator[yaml.Event]) -> Seq:
        items: list[Node] = []
        for event in stream:
            if isinstance(event, yaml.SequenceEndEvent):
                break
            items.append(self.node(event, stream))
        return Seq(tuple(items), *_position(start))

    def mapping(self, start: yaml.Event, stream: Iterator[yaml.Event]) -> Map:
        entries: dict[str, tuple[Scalar, Node]] = {}
        for event in stream:
            if isinstance(event, yaml.MappingEndEvent):
                break
            key = self.node(event, stream)
            value = self.node(next(stream), stream)
            if not isinstance(key, Scalar):
                self.problem(event, "keys must be plain text", "wrong_type")
                continue
            if key.plain and key.text == "<<":
                self.problem(event, "merge keys (<<) are not allowed: write the keys out", "merge_key")
                continue
            if key.text in entries:
                first = entries[key.text][0]
                self.problem(event, f"duplicate key '{key.text}' (first at line {first.line})",
                             "duplicate_key")
                continue
            entries[key.text] = (key, value)
        return Map(entries, *_position(start))


def _position(event: yaml.Event) -> tuple[int, int]:
    """1-based line and column where ``event`` starts."""
    mark = event.start_mark
    if mark is None:  # the parser marks every event it emits
        return 0, 0
    return mark.line + 1, mark.column + 1
