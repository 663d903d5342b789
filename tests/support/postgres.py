"""A PostgreSQL server for tests: one throwaway schema per use, dropped afterwards.

``RELAY_TEST_POSTGRES_URL`` names the server (default: the local one, database
``test``). Tests skip when it does not answer, unless ``RELAY_REQUIRE_POSTGRES=1``
(set by ``.ci/run``) turns the skip into a failure.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from functools import lru_cache
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

SERVER_URL = os.environ.get("RELAY_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
RUN_ID = uuid.uuid4().hex[:8]


@lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    try:
        with psycopg.connect(SERVER_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {SERVER_URL} does not answer: {' '.join(str(exc).split())}"
    return None


def require_postgres() -> None:
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("RELAY_REQUIRE_POSTGRES") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def new_schema_name(label: str = "t") -> str:
    return f"relay_test_{RUN_ID}_{label}_{uuid.uuid4().hex[:6]}"


def schema_url(schema: str, **params: str) -> str:
    extra = "".join(f"&{key}={value}" for key, value in params.items())
    return f"{SERVER_URL}?schema={schema}{extra}"


def drop_schema(schema: str) -> None:
    with psycopg.connect(SERVER_URL, connect_timeout=3, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def drop_run_schemas() -> None:
    """Whatever this run left behind (a test that crashed before its own cleanup)."""
    if unavailable_reason() is not None:
        return
    with psycopg.connect(SERVER_URL, connect_timeout=3, autocommit=True) as conn:
        names = [row[0] for row in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"relay_test_{RUN_ID}_%",))]
    for name in names:
        drop_schema(name)


# --- the server itself, for outage tests ---

def cluster() -> tuple[str, str] | None:
    """(version, name) of the local Debian cluster, if this machine runs one."""
    etc = Path("/etc/postgresql")
    if not shutil.which("pg_ctlcluster") or not etc.is_dir():
        return None
    for version in sorted(etc.iterdir(), reverse=True):
        if (version / "main").is_dir():
            return version.name, "main"
    return None


def pg_ctl(action: str) -> None:
    found = cluster()
    if found is None:
        raise RuntimeError("no local PostgreSQL cluster to control")
    version, name = found
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, action],
                   check=True, capture_output=True, timeout=60)
