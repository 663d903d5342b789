"""Schemathesis against a real relay: no 500s, and every answer matches /openapi.json.

The relay runs as in production (gunicorn, two workers) on a temporary SQLite
outbox with the shipped mappings and made-up secrets; the sandbox stands in for
Trackdrive. Examples are bounded so the run stays short.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.procs import VENV_BIN
from tests.support.stack import Stack

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"
MAX_EXAMPLES = "30"


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(workdir=tmp_path, env_overrides={"RELAY_RATE_LIMIT": "0"}).start()
    yield stack
    stack.stop()


def test_relay_matches_its_openapi_description(relay: Stack, tmp_path: Path):
    run = subprocess.run(
        [str(VENV_BIN / "st"), "run", f"{relay.url}/openapi.json", "--checks", CHECKS,
         "--max-examples", MAX_EXAMPLES, "--seed", "20240601", "--no-color",
         "--report", "junit", "--report-dir", str(tmp_path / "report")],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:] + relay.logs()[-5000:]
