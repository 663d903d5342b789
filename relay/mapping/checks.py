"""Collecting problems while reading a mapping file's tree.

A :class:`Checker` never stops at the first fault: every helper reports what is
wrong at the node's line and column and returns ``None``, so the compiler can
carry on and show the author every mistake in one run.
"""
from __future__ import annotations

import difflib
from typing import Iterable, Mapping, Protocol

from relay.mapping.model import ENV_REF, Problem
from relay.mapping.yamlload import Map, Node, Scalar, Seq, kind_of
from relay.words import boolean_word


def closest(word: str, choices: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


class Located(Protocol):
    """A node of the tree, or anything compiled from one, that knows where it was written."""

    @property
    def line(self) -> int: ...

    @property
    def column(self) -> int: ...


class Checker:
    def __init__(self, file: str, env: Mapping[str, str] | None) -> None:
        self.file = file
        self.env = env
        self.problems: list[Problem] = []
        self.referenced_env: set[str] = set()  # every ${ENV} the file names, for the source's env_names

    # --- reporting ---

    def error(self, node: Located | None, message: str, code: str) -> None:
        line, column = (node.line, node.column) if node is not None else (1, 1)
        self.problems.append(Problem(self.file, line, column, message, code))

    def unique_problems(self) -> list[Problem]:
        # a base field checked again under every route would otherwise repeat
        unique = dict.fromkeys(self.problems)
        return sorted(unique, key=lambda problem: (problem.line, problem.column))

    # --- shapes ---

    def keys(self, node: Map, allowed: Iterable[str], where: str) -> None:
        allowed = tuple(allowed)
        for key, (key_node, _) in node.entries.items():
            if key in allowed:
                continue
            hint = closest(key, allowed)
            suffix = f"; did you mean '{hint}'?" if hint else f"; known keys: {', '.join(allowed)}"
            self.error(key_node, f"unknown key '{key}' in {where}{suffix}", "unknown_key")

    def need(self, node: Map, key: str, where: str) -> Node | None:
        value = node.get(key)
        if value is None:
            self.error(node, f"{where} needs '{key}'", "missing_key")
        return value

    def as_map(self, node: Node, where: str) -> Map | None:
        if isinstance(node, Map):
            return node
        self.error(node, f"{where} must be a mapping, not {kind_of(node)}", "wrong_type")
        return None

    def as_items(self, node: Node, where: str) -> tuple[Node, ...]:
        """A list, or one item written without brackets."""
        if isinstance(node, Seq):
            return node.items
        if isinstance(node, Scalar) and node.is_null:
            self.error(node, f"{where} must not be empty", "wrong_type")
            return ()
        return (node,)

    def as_list(self, node: Node, where: str) -> tuple[Node, ...] | None:
        if isinstance(node, Seq):
            return node.items
        self.error(node, f"{where} must be a list, not {kind_of(node)}", "wrong_type")
        return None

    def text(self, node: Node, where: str) -> str | None:
        if isinstance(node, Scalar) and not node.is_null:
            return node.text
        self.error(node, f"{where} must be text, not {kind_of(node)}", "wrong_type")
        return None

    def choice(self, node: Node, choices: Iterable[str], where: str) -> str | None:
        choices = tuple(choices)
        text = self.text(node, where)
        if text is None or text in choices:
            return text
        hint = closest(text, choices)
        suffix = f"; did you mean '{hint}'?" if hint else ""
        self.error(node, f"{where} must be one of {', '.join(choices)}, not '{text}'{suffix}",
                   "invalid_option")
        return None

    def boolean(self, node: Node, where: str) -> bool | None:
        text = self.text(node, where)
        if text is None:
            return None
        answer = boolean_word(text)
        if answer is None:
            self.error(node, f"{where} must be true or false, not '{text}'", "wrong_type")
        return answer

    def integer(self, node: Node, where: str, minimum: int = 0) -> int | None:
        text = self.text(node, where)
        if text is None:
            return None
        try:
            value = int(text.strip())
        except ValueError:
            self.error(node, f"{where} must be a whole number, not '{text}'", "wrong_type")
            return None
        if value < minimum:
            self.error(node, f"{where} must be at least {minimum}", "bad_argument")
            return None
        return value

    def number(self, node: Node, where: str) -> float | None:
        text = self.text(node, where)
        if text is None:
            return None
        try:
            value = float(text.strip())
        except ValueError:
            self.error(node, f"{where} must be a number, not '{text}'", "wrong_type")
            return None
        if not value > 0:
            self.error(node, f"{where} must be greater than 0", "bad_argument")
            return None
        return value

    # --- secrets ---

    def needed_secrets(self, shape: Map, keys: tuple[str, ...], where: str) -> tuple[str, ...] | None:
        """The ENV names of required ``${ENV}`` keys, in order; None when any is missing or literal."""
        nodes = [self.need(shape, key, where) for key in keys]
        names = [self.secret(node, f"{where}.{key}") if node is not None else None
                 for key, node in zip(keys, nodes, strict=True)]
        if any(name is None for name in names):
            return None
        return tuple(name for name in names if name is not None)

    def secret(self, node: Node, where: str) -> str | None:
        """The ENV name of a ``${ENV}`` reference; a literal value is refused without echoing it."""
        if not isinstance(node, Scalar) or node.is_null:
            self.error(node, f"{where} must be an ${{ENV_NAME}} reference, not {kind_of(node)}",
                       "wrong_type")
            return None
        match = ENV_REF.match(node.text.strip())
        if not match:
            self.error(node, f"{where} is a secret: write it as an ${{ENV_NAME}} reference, "
                             "never the value itself", "literal_secret")
            return None
        self.check_env(node, match.group(1))
        return match.group(1)

    def secrets(self, node: Node, where: str) -> tuple[str, ...] | None:
        """One secret, or a list of two while rotating."""
        items = node.items if isinstance(node, Seq) else (node,)
        if not 1 <= len(items) <= 2:
            self.error(node, f"{where} takes one secret, or a list of two during a rotation",
                       "bad_argument")
            return None
        names = [self.secret(item, where) for item in items]
        return tuple(n for n in names if n) if all(names) else None

    def check_env(self, node: Node, name: str) -> None:
        self.referenced_env.add(name)
        if self.env is not None and not self.env.get(name):
            self.error(node, f"environment variable {name} is not set", "missing_env")
