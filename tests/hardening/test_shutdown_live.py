"""After a clean stop, relay.db alone holds every lead: the write-ahead log was folded in."""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import requests

from tests.support.stack import Stack

LEADS = 30


def test_a_copy_of_relay_db_after_a_clean_stop_has_every_lead(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "run").start()
    try:
        for i in range(LEADS):
            answer = requests.post(f"{stack.url}/hooks/generic-json", timeout=10,
                                   json={"lead_id": f"wal-{i}", "contact": {"phone": f"+1512204{i:04d}"}},
                                   headers={"X-Api-Key": "example-key"})
            assert answer.status_code == 202, answer.text
    finally:
        stack.stop()
    copy = tmp_path / "copy.db"
    shutil.copy(tmp_path / "run" / "relay.db", copy)  # the file alone, as a careless backup takes it
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT count(*) FROM leads").fetchone()[0] == LEADS
