"""`mode: sync` over real HTTP: the vendor gets Trackdrive's answer, or 202 when Trackdrive is slow."""
from __future__ import annotations

from typing import Iterator

import pytest
import requests

from tests.support.stack import Stack, wait_until

SYNC_MAPPING = """\
version: 1
trackdrive: {lead_token: "${GENERIC_JSON_LEAD_TOKEN}"}
lead:
  caller_id: {path: $.phone, transform: phone, required: true}
  assign_trackdrive_number: true
inbound: {mode: sync, sync_deadline: 1s}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("sync")
    (workdir / "mappings").mkdir()
    (workdir / "mappings" / "callnow.yaml").write_text(SYNC_MAPPING)
    running = Stack(workdir).start()
    yield running
    running.stop()


def test_sync_source_answers_with_trackdrives_status_and_body(stack: Stack) -> None:
    answer = requests.post(f"{stack.url}/hooks/callnow", json={"phone": "(512) 201-0042"}, timeout=10)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["status"] == "delivered"
    assert body["trackdrive"]["status"] == 201
    assert body["trackdrive"]["body"]["trackdrive_number_plain"]


def test_slow_trackdrive_falls_back_to_202_queued_and_still_delivers(stack: Stack) -> None:
    stack.set_behaviour(delay_ms=2500)
    try:
        answer = requests.post(f"{stack.url}/hooks/callnow", json={"phone": "(512) 201-0043"}, timeout=10)
        assert answer.status_code == 202, answer.text
        lead_id = answer.json()["lead_id"]
        assert answer.json()["status"] == "queued"
        assert wait_until(lambda: any(r.get("lead_id") == lead_id and r["answer"]["fate"] == "accepted"
                                      for r in stack.received()))
    finally:
        stack.set_behaviour(delay_ms=0)
