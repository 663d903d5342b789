"""Linting and loading a whole mappings directory, with the one file rule of relay.intake.files."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from relay.intake.files import expand, scan
from relay.mapping.lint import compile_file
from relay.mapping.model import Problem
from relay.mapping.source import Source


def lint_paths(paths: Sequence[str | Path], *, env: Mapping[str, str] | None = None) -> list[Problem]:
    """Every problem in the given files and directories (a directory: its mapping files)."""
    problems: list[Problem] = []
    for given in map(Path, paths):
        if given.is_dir():
            listed = scan(given)
            if listed is None:
                problems.append(Problem(str(given), 1, 1, "cannot list the directory", "unreadable"))
                continue
            files, listing_problems = listed
            problems.extend(listing_problems)
            targets = [item.path for item in files]
        else:
            targets = [given]
        for path in targets:
            problems.extend(compile_file(path, env=env)[1])
    return problems


def load_directory(directory: str | Path, *, env: Mapping[str, str] | None = None
                   ) -> tuple[dict[str, Source], list[Problem]]:
    """The sources that compiled, by name, and the problems of every file (warnings included)."""
    listed = scan(Path(directory))
    if listed is None:
        return {}, [Problem(str(directory), 1, 1, "cannot list the directory", "unreadable")]
    files, problems = listed
    sources: dict[str, Source] = {}
    for item in files:
        source, found = compile_file(item.path, env=env)
        problems.extend(found)
        if source is not None:
            sources[source.name] = source
    return sources, problems


def counted_files(paths: Sequence[str | Path]) -> int:
    return len(expand(list(paths)))
