"""SIGTERM on a real gunicorn: /readyz turns 503 first, leads keep being accepted, none is lost."""
from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import requests

from relay.store import open_store
from tests.reload.live import PHONE, Stream, next_seq, start_stack
from tests.reload.mappings_fixture import V1
from tests.support.stack import WAIT_S

LIMITED = V1 + "inbound:\n  rate_limit: {per_second: 1, burst: 3}\n"


class ReadyPoller:
    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[tuple[int, int | None]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                status: int | None = requests.get(f"{self.url}/readyz", timeout=10).status_code
            except requests.RequestException:
                status = None
            self.answers.append((next_seq(), status))
            if status is None:
                return


def test_sigterm_drains_then_stops_without_losing_a_lead(tmp_path: Path):
    stack = start_stack(tmp_path, RELAY_DRAIN_SECONDS="1")
    poller = ReadyPoller(stack.url)
    try:
        with Stream(f"{stack.url}/hooks/acme", PHONE) as stream:
            poller.thread.start()
            assert wait_for(lambda: len(stream.answers) >= 5 and poller.answers)
            os.kill(stack.relay.popen.pid, signal.SIGTERM)  # the master, as a supervisor would
            assert stack.relay.popen.wait(WAIT_S) == 0, stack.logs()
        poller.thread.join(WAIT_S)
    finally:
        poller.stop.set()
        stack.stop()

    ready = [status for _, status in poller.answers]
    first_503 = next(seq for seq, status in poller.answers if status == 503)
    assert 200 in ready[:ready.index(503)]
    gone = [seq for seq, status, _ in stream.answers if status is None]
    assert not gone or first_503 < gone[0]
    accepted_while_draining = [seq for seq, status, _ in stream.answers if status == 202 and seq > first_503]
    assert accepted_while_draining, "new leads must still be accepted during the drain window"
    assert {status for _, status, _ in stream.answers} <= {202, None}

    outbox = open_store(stack.database_url, synchronous="NORMAL")
    try:
        missing = [lead_id for lead_id in stream.accepted_ids() if outbox.get(lead_id) is None]
    finally:
        outbox.close()
    assert missing == []


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path):
    stack = start_stack(tmp_path, {"acme.yaml": LIMITED})
    try:
        answers = [requests.post(f"{stack.url}/hooks/acme", json=PHONE, timeout=30) for _ in range(20)]
    finally:
        stack.stop()
    statuses = {answer.status_code for answer in answers}
    assert statuses == {202, 429}
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limited"


def wait_for(condition) -> bool:
    from tests.support.stack import wait_until

    return bool(wait_until(condition))
