"""The sources the relay answers for, kept in one object whose contents are swapped on reload.

Readers never lock: every reload builds a complete new :class:`Snapshot` and
replaces the one reference to it, so a request sees either the old set of
sources or the new one, never a mix.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from relay.intake.files import FileStamp, MappingFile, scan, source_name
from relay.intake.lastgood import LastGood
from relay.mapping.lint import compile_file
from relay.mapping.model import Problem
from relay.mapping.source import Source


@dataclass(frozen=True)
class LoadedFile:
    """One mapping file as last read: the source serving for it and the file's current problems."""

    stamp: FileStamp | None  # None: given directly, not read from a directory
    source: Source | None  # the last version that compiled, even if the file is broken now
    problems: tuple[Problem, ...] = ()
    broken: bool = False  # the file on disk has errors (the source, if any, is an older version)


@dataclass(frozen=True)
class Snapshot:
    files: Mapping[str, LoadedFile] = field(default_factory=dict)  # by source name
    extra_problems: tuple[Problem, ...] = ()  # problems not tied to one file

    @property
    def sources(self) -> dict[str, Source]:
        return {name: loaded.source for name, loaded in self.files.items() if loaded.source is not None}

    @property
    def problems(self) -> list[Problem]:
        found = list(self.extra_problems)
        for name in sorted(self.files):
            found.extend(self.files[name].problems)
        return found


@dataclass(frozen=True)
class ReloadReport:
    """What one reload changed; empty when nothing on disk moved."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    broken: tuple[str, ...] = ()  # failed to compile; the last good version (if any) keeps serving

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.broken)


class SourceRegistry:
    def __init__(self, sources: Mapping[str, Source], problems: Sequence[Problem] = (),
                 directory: str | Path | None = None, last_good: LastGood | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.last_good = last_good
        self._snapshot = Snapshot(files={name: LoadedFile(None, source) for name, source in sources.items()},
                                  extra_problems=tuple(problems))

    @classmethod
    def load(cls, directory: str | Path, *, last_good_dir: str | Path | None = None) -> SourceRegistry:
        """Compile every mapping file in ``directory``.

        Loaded without the environment on purpose: a source whose secret is unset
        still loads, and each request to it is then refused with a 503 naming the
        variable, instead of the source vanishing behind a 404. With ``last_good_dir``, each
        file that compiles is kept there, and a file broken at start serves its kept version.
        """
        last_good = LastGood(last_good_dir) if last_good_dir else None
        registry = cls({}, directory=directory, last_good=last_good)
        registry.reload()
        return registry

    # --- reading (lock-free: one attribute read per call) ---

    @property
    def problems(self) -> list[Problem]:
        return self._snapshot.problems

    def missing_env(self, env: Mapping[str, str]) -> dict[str, list[str]]:
        """Unset secrets by source, for a warning at start-up."""
        found = {name: source.missing_env(env) for name, source in self._snapshot.sources.items()}
        return {name: missing for name, missing in found.items() if missing}

    def get(self, name: str) -> Source | None:
        loaded = self._snapshot.files.get(name)
        return loaded.source if loaded is not None else None

    def names(self) -> list[str]:
        return sorted(self._snapshot.sources)

    def sources(self) -> dict[str, Source]:
        return self._snapshot.sources

    def problems_for(self, name: str) -> list[Problem]:
        """Problems in ``<name>.yaml``: a source that failed to load, or whose latest edit did not."""
        return [problem for problem in self.problems if source_name(Path(problem.file)) == name]

    def is_stale(self, name: str) -> bool:
        """True when ``<name>.yaml`` on disk is broken and an older version still serves."""
        loaded = self._snapshot.files.get(name)
        return loaded is not None and loaded.broken and loaded.source is not None

    # --- reloading ---

    def fingerprint(self) -> tuple[tuple[str, FileStamp], ...]:
        """A cheap summary of the mapping directory: it changes whenever a reload would."""
        if self.directory is None:
            return ()
        listed = scan(self.directory)
        if listed is None:
            return ()
        return tuple(sorted((item.name, item.stamp) for item in listed[0]))

    def reload(self, *, force: bool = False) -> ReloadReport:
        """Recompile the files whose stamp changed (every file with ``force``), then swap
        in the result with one assignment.

        Not safe to run twice at once: one watcher per process calls it.
        """
        if self.directory is None:
            return ReloadReport()
        listed = scan(self.directory)
        if listed is None:
            # An unreadable directory is more likely a hiccup than an order to drop every source.
            return ReloadReport()
        mapping_files, listing_problems = listed
        old = self._snapshot
        files: dict[str, LoadedFile] = {}
        added: list[str] = []
        updated: list[str] = []
        broken: list[str] = []
        for item in mapping_files:
            name = item.name
            before = old.files.get(name)
            if before is not None and before.stamp == item.stamp and not force:
                files[name] = before
                continue
            files[name] = compile_loaded(item, before, self.last_good)
            if files[name].broken:
                broken.append(name)
            elif before is None or before.source is None:
                added.append(name)
            else:
                updated.append(name)
        removed = tuple(sorted(set(old.files) - set(files)))
        if self.last_good is not None:
            for name in removed:
                self.last_good.forget(name)
        self._snapshot = Snapshot(files=files, extra_problems=tuple(listing_problems))
        return ReloadReport(tuple(added), tuple(updated), removed, tuple(broken))


def compile_loaded(item: MappingFile, before: LoadedFile | None, last_good: LastGood | None = None) -> LoadedFile:
    """The file compiled afresh; on errors the previous source (in memory, else on disk) keeps serving."""
    source, problems = compile_file(item.path, env=None)
    if source is not None:
        if last_good is not None:
            last_good.remember(item.name, item.path)
        return LoadedFile(item.stamp, source, tuple(problems))
    kept = before.source if before is not None else None
    if kept is None and last_good is not None:
        kept = last_good.recall(item.name)
    return LoadedFile(item.stamp, kept, tuple(problems), broken=True)
