"""The one rule for which files in a mappings directory are sources.

Lint, the CLI, serving and live reload all list mapping files here, so a file
that lint checks is a file the relay serves, and the other way round. A source
is ``<name>.yaml`` or ``<name>.yml``; ``*.test.yaml`` files hold its test cases;
dotfiles (editor swap files, Kubernetes' ``..data``) are never sources. Two
files naming one source are a problem, reported, never resolved silently.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from relay.mapping.model import Problem

MAPPING_SUFFIXES = (".yaml", ".yml")
TEST_SUFFIXES = (".test.yaml", ".test.yml")

# (st_mtime_ns, st_size, st_ino) of a mapping file after its symlinks are resolved
FileStamp = tuple[int, int, int]


@dataclass(frozen=True)
class MappingFile:
    name: str  # the source name: the file name without its suffix
    path: Path
    stamp: FileStamp


def is_mapping_file_name(name: str) -> bool:
    return name.endswith(MAPPING_SUFFIXES) and not name.endswith(TEST_SUFFIXES) and not name.startswith(".")


def source_name(path: Path) -> str:
    name = path.name
    for suffix in MAPPING_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def scan(directory: Path) -> tuple[list[MappingFile], list[Problem]] | None:
    """The source files of ``directory`` and the problems of the listing; None when unreadable.

    Symlinks are followed (editors' rename-saves, ConfigMap swaps). When two files
    name one source, neither is served: guessing which one the operator meant
    would serve the wrong mapping without a word.
    """
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return None
    found: dict[str, list[MappingFile]] = {}
    for path in entries:
        if not is_mapping_file_name(path.name):
            continue
        try:
            info = path.stat()
        except OSError:
            continue  # a dangling link or a file removed meanwhile: no source
        if not path.is_file():
            continue
        item = MappingFile(source_name(path), path, (info.st_mtime_ns, info.st_size, info.st_ino))
        found.setdefault(item.name, []).append(item)
    files: list[MappingFile] = []
    problems: list[Problem] = []
    for name, items in sorted(found.items()):
        if len(items) == 1:
            files.append(items[0])
            continue
        shown = " and ".join(str(item.path) for item in items)
        for item in items:
            problems.append(Problem(str(item.path), 1, 1, f"source {name!r} is defined twice ({shown}); "
                                    "remove one of them", "duplicate_source"))
    return files, problems


def mapping_files(directory: str | Path) -> list[Path]:
    """The paths of every file of ``directory`` that is a source (or claims to be one)."""
    listed = scan(Path(directory))
    if listed is None:
        return []
    files, problems = listed
    doubled = [Path(problem.file) for problem in problems]
    return sorted([item.path for item in files] + doubled)


def expand(paths: list[str | Path]) -> list[Path]:
    """Files given directly stay; a directory becomes its mapping files."""
    found: list[Path] = []
    for given in map(Path, paths):
        found.extend(mapping_files(given) if given.is_dir() else [given])
    return found
