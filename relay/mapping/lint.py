"""Loading mapping files from disk, alone or a directory at a time, and linting them."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

from relay.mapping.compiler import compile_source, is_error
from relay.mapping.model import Problem
from relay.mapping.source import Source

SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
TEST_SUFFIX = ".test.yaml"


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
    name = path.name[:-len(".yaml")] if path.name.endswith(".yaml") else path.stem
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


def mapping_files(directory: str | Path) -> list[Path]:
    return sorted(path for path in Path(directory).glob("*.yaml")
                  if not path.name.endswith(TEST_SUFFIX) and path.is_file())


def load_directory(directory: str | Path, *, env: Mapping[str, str] | None = None
                   ) -> tuple[dict[str, Source], list[Problem]]:
    """The sources that compiled, by name, and the problems of every file (warnings included)."""
    sources: dict[str, Source] = {}
    problems: list[Problem] = []
    for path in mapping_files(directory):
        source, found = compile_file(path, env=env)
        problems.extend(found)
        if source is not None:
            sources[source.name] = source
    return sources, problems


def lint_paths(paths: Sequence[str | Path], *, env: Mapping[str, str] | None = None) -> list[Problem]:
    """Every problem in the given files and directories (a directory: its mapping files)."""
    problems: list[Problem] = []
    for given in paths:
        path = Path(given)
        files = mapping_files(path) if path.is_dir() else [path]
        for file in files:
            problems.extend(compile_file(file, env=env)[1])
    return problems
