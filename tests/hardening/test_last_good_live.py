"""A broken mapping on disk survives restarts: new workers serve the last good version kept on disk."""
from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import requests

from tests.reload.live import PHONE, all_answer, start_stack
from tests.reload.mappings_fixture import BROKEN, ENV, TEL_ONLY, save_by_rename
from tests.support.procs import VENV_BIN
from tests.support.stack import Stack, wait_until


def readyz_problems(stack: Stack) -> list:
    report = requests.get(f"{stack.url}/readyz", headers=stack.admin_headers, timeout=10).json()
    return report["sources"].get("acme", {}).get("problems", [])


def test_restart_and_hup_keep_serving_the_last_good_mapping(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, workers=2)
    url = f"{stack.url}/hooks/acme"
    try:
        assert all_answer(url, PHONE, 202, count=4)
        save_by_rename(stack.mappings_dir / "acme.yaml", BROKEN)
        assert wait_until(lambda: readyz_problems(stack)), stack.logs()

        # A HUP to the master starts fresh workers: none has the old version in memory.
        stack.relay.popen.send_signal(signal.SIGHUP)
        assert wait_until(lambda: stack.relay.log().count("mapping_watch_started") >= 4), stack.logs()
        assert all_answer(url, PHONE, 202, count=8), stack.logs()
        assert all_answer(url, TEL_ONLY, 422, count=2)  # still the last good version, not some other
        assert readyz_problems(stack)

        stack.relay.stop()
        stack.start_relay()
        assert all_answer(url, PHONE, 202, count=8), stack.logs()
        assert readyz_problems(stack)
        lint = subprocess.run([str(VENV_BIN / "relay"), "mappings", "lint", str(stack.mappings_dir)],
                              capture_output=True, text=True, env={**ENV, "PATH": str(VENV_BIN)}, timeout=60)
        assert lint.returncode != 0 and "acme.yaml" in lint.stdout + lint.stderr
        assert (tmp_path / "last-good-mappings" / "acme.yaml").is_file()
    finally:
        stack.stop()
