"""Retention run by a real relay (two workers), and `relay outbox forget` against its outbox."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import requests

from relay.store import open_store
from tests.support.procs import VENV_BIN
from tests.support.stack import Stack, wait_until

HEADERS = {"X-Api-Key": "example-key"}


def post(stack: Stack, lead_id: str, phone: str) -> str:
    answer = requests.post(f"{stack.url}/hooks/generic-json", headers=HEADERS, timeout=10,
                           json={"lead_id": lead_id, "contact": {"phone": phone, "first_name": "Ann"}})
    assert answer.status_code == 202, answer.text
    return answer.json()["lead_id"]


def test_personal_data_is_redacted_after_its_retention_and_one_person_can_be_forgotten(tmp_path: Path) -> None:
    stack = Stack(tmp_path, env_overrides={"RELAY_RETENTION": "delivered:3s", "RELAY_RETENTION_INTERVAL": "1"}).start()
    try:
        forgotten = post(stack, "keep-me-not", "+1 512 555 0142")
        erase = subprocess.run([str(VENV_BIN / "relay"), "outbox", "forget", "--phone", "(512) 555-0142", "--json"],
                               capture_output=True, text=True, timeout=60,
                               env={"PATH": str(VENV_BIN), "RELAY_DATABASE_URL": stack.database_url})
        assert erase.returncode == 0, erase.stderr
        report = json.loads(erase.stdout)
        assert report["lead_ids"] == [forgotten] and report["erased"]["leads"] == 1
        assert "555-0142" not in erase.stdout and "5550142" not in erase.stdout

        kept = [post(stack, f"retained-{i}", f"+1 512 555 01{i:02d}") for i in range(3)]
        store = open_store(stack.database_url)
        try:
            assert store.get(forgotten) is None
            assert wait_until(lambda: all(store.redacted_at(i) is not None for i in kept), timeout_s=60), \
                stack.logs()
            for lead_id in kept:
                lead = store.get(lead_id)
                assert lead.status == "delivered" and lead.body == b"" and lead.call is None
        finally:
            store.close()
        assert '"event": "retention_run"' in stack.relay.log()
    finally:
        stack.stop()
