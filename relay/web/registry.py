"""The sources the relay answers for, kept in one object so it can be swapped on reload."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from relay.mapping.model import InboundRequest, InboundSettings, MapOutcome, Problem


class Source(Protocol):
    """What the web layer needs from a loaded mapping (see relay.mapping)."""

    name: str
    version: str
    inbound: InboundSettings

    def parse(self, request: InboundRequest) -> dict[str, Any]: ...

    def map_payload(self, payload: dict[str, Any]) -> MapOutcome: ...

    def idempotency_key(self, payload: dict[str, Any], headers: Mapping[str, str]) -> str | None: ...

    def missing_env(self, env: Mapping[str, str]) -> list[str]: ...


class SourceRegistry:
    def __init__(self, sources: Mapping[str, Source], problems: Sequence[Problem] = ()) -> None:
        self._sources = dict(sources)
        self.problems: list[Problem] = list(problems)

    @classmethod
    def load(cls, directory: str | Path) -> "SourceRegistry":
        """Compile every mapping file in ``directory``.

        Loaded without the environment on purpose: a source whose secret is unset
        still loads, and each request to it is then refused with a 503 naming the
        variable, instead of the source vanishing behind a 404.
        """
        from relay.mapping import load_directory

        sources, problems = load_directory(directory, env=None)
        return cls(sources, problems)

    def missing_env(self, env: Mapping[str, str]) -> dict[str, list[str]]:
        """Unset secrets by source, for a warning at start-up."""
        found = {name: source.missing_env(env) for name, source in self._sources.items()}
        return {name: missing for name, missing in found.items() if missing}

    def get(self, name: str) -> Source | None:
        return self._sources.get(name)

    def names(self) -> list[str]:
        return sorted(self._sources)

    def problems_for(self, name: str) -> list[Problem]:
        """Problems in ``<name>.yaml``: a source that exists on disk but failed to load."""
        return [problem for problem in self.problems if Path(problem.file).name == f"{name}.yaml"]
