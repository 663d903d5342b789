"""Backend fixtures for the outbox contract suite.

Every backend appears as a ``Backend`` naming a database URL; ``store`` opens
it migrated. A PostgreSQL backend joins by adding its name to ``BACKENDS`` and
a branch to ``_backend_url``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from relay.store import open_store
from relay.store.base import Store

BACKENDS = ["sqlite"]


@dataclass(frozen=True)
class Backend:
    name: str
    url: str

    def open(self) -> Store:
        """Another independent handle on the same database (like another process has)."""
        return open_store(self.url)


def _backend_url(name: str, tmp_path: Path) -> str:
    if name == "sqlite":
        return f"sqlite:///{tmp_path / 'outbox' / 'relay.db'}"
    raise AssertionError(f"no fixture for backend {name}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend(request.param, _backend_url(request.param, tmp_path))


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    opened = backend.open()
    yield opened
    opened.close()
