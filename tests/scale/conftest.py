"""Real processes for the scale-out tests: PostgreSQL, the sandbox, relay instances, nginx.

Each test gets its own PostgreSQL schema (dropped afterwards) and its own ports.
Tests skip when PostgreSQL or nginx cannot be had, unless ``.ci/run`` asked for
them (``RELAY_REQUIRE_POSTGRES=1``, ``RELAY_REQUIRE_NGINX=1``): then they fail.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from relay.store import open_store
from tests.scale.cluster import Cluster
from tests.support import postgres

NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx")
MAPPINGS = Path(__file__).parent / "mappings"


def nginx_binary() -> str:
    for candidate in NGINX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    reason = "nginx is not installed (apt-get install nginx-light)"
    if os.environ.get("RELAY_REQUIRE_NGINX") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _drop_leftover_schemas() -> Iterator[None]:
    yield
    postgres.drop_run_schemas()


@pytest.fixture
def schema() -> Iterator[str]:
    postgres.require_postgres()
    name = postgres.new_schema_name("scale")
    open_store(postgres.schema_url(name)).close()  # migrated once, before instances race
    yield name
    postgres.drop_schema(name)


@pytest.fixture
def cluster(tmp_path: Path, schema: str) -> Iterator[Cluster]:
    running = Cluster(workdir=tmp_path, database_url=postgres.schema_url(schema),
                      mappings_src=MAPPINGS)
    try:
        yield running
    finally:
        running.stop()
