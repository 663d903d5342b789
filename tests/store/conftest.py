"""Backend fixtures for the outbox contract suite.

Every backend appears as a ``Backend`` naming a database URL; ``store`` opens
it migrated. SQLite gets a fresh file per test; PostgreSQL a fresh schema per
test (``?schema=relay_test_...``), dropped when the test ends.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from relay.store import open_store
from relay.store.base import Store
from tests.support import postgres

BACKENDS = ["sqlite", "postgres"]


@dataclass(frozen=True)
class Backend:
    name: str
    url: str

    def open(self) -> Store:
        """Another independent handle on the same database (like another process has)."""
        return open_store(self.url)


@pytest.fixture(scope="session", autouse=True)
def _drop_leftover_schemas() -> Iterator[None]:
    yield
    postgres.drop_run_schemas()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite:///{tmp_path / 'outbox' / 'relay.db'}")
        return
    postgres.require_postgres()
    schema = postgres.new_schema_name()
    yield Backend("postgres", postgres.schema_url(schema))
    postgres.drop_schema(schema)


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    opened = backend.open()
    yield opened
    opened.close()
