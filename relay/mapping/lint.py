"""Loading one mapping file from disk: its compiled source and every problem.

Which files of a directory are sources is decided in one place, relay.intake.files.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

from relay.mapping.compiler import compile_source, is_error
from relay.mapping.model import Problem
from relay.mapping.source import Source

SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class MappingInvalid(Exception):
    """A mapping file has errors; ``problems`` lists every one with file:line:col."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        errors = [p for p in problems if is_error(p)]
        super().__init__("\n".join(str(p) for p in errors) or "invalid mapping")


def compile_file(path: str | Path, *, env: Mapping[str, str] | None = None
                 ) -> tuple[Source | None, list[Problem]]:
    """The source in ``path`` (None on any error) and every problem, warnings included."""
    path = Path(path)
    shown = str(path)
    name = path.name.removesuffix(".yaml").removesuffix(".yml") if path.suffix in (".yaml", ".yml") \
        else path.stem
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(shown, 1, 1, f"cannot read the file: {exc.strerror}", "unreadable")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(shown, 1, 1, f"the file is not UTF-8 text ({exc.reason})", "not_utf8")]
    problems: list[Problem] = []
    if not SOURCE_NAME.match(name):
        problems.append(Problem(shown, 1, 1, f"'{name}' is not a valid source name: file names "
                                             "must match [a-z0-9][a-z0-9_-]*", "bad_source_name"))
    source, found = compile_source(name, shown, text, env=env)
    problems.extend(found)
    return (None if problems and any(is_error(p) for p in problems) else source), problems


def load_source(path: str | Path, *, env: Mapping[str, str] | None = None) -> Source:
    """The compiled source; raises :class:`MappingInvalid` listing every error.

    With ``env`` (the process environment, say) every ``${ENV}`` the file names
    must be set; ``env=None`` skips that check.
    """
    source, problems = compile_file(path, env=env)
    if source is None:
        raise MappingInvalid(problems)
    return source
