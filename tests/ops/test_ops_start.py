"""A real `relay serve` whose outbox cannot be opened at start: it says so once and stays up, not ready."""
from __future__ import annotations

from pathlib import Path

import requests

from tests.support.procs import ROOT, free_port, gunicorn
from tests.support.stack import SHIPPED_SECRETS, wait_until


def test_an_outbox_unavailable_at_start_is_said_once_and_the_relay_waits_for_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the outbox's directory should be")
    port = free_port()
    env = {**SHIPPED_SECRETS, "RELAY_DATABASE_URL": f"sqlite:///{blocker / 'relay.db'}",
           "RELAY_MAPPINGS_DIR": str(ROOT / "mappings"), "RELAY_LAST_GOOD_DIR": str(tmp_path / "last-good")}
    relay = gunicorn(port, tmp_path / "relay.log", env, workers=1).start()
    try:
        url = f"http://127.0.0.1:{port}"
        relay.wait_http(f"{url}/healthz")
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
        assert wait_until(lambda: requests.get(f"{url}/readyz", timeout=5).status_code == 503)
    finally:
        relay.stop()
    log = relay.log()
    # The migration runs in a child of the master; its verdict is logged once, without a traceback.
    assert log.count("outbox unavailable at start, workers will retry") == 1, log
    assert "migrating the outbox at start failed" not in log and "Traceback" not in log
