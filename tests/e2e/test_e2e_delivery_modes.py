"""Both ways a worker sends to Trackdrive, through a real gunicorn: every lead reaches the sandbox once."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.stack import Stack, wait_until

LEADS = 20


@pytest.mark.parametrize("evented", ["1", "0"], ids=["evented", "a-thread-per-call"])
def test_every_lead_reaches_trackdrive_once_either_way(tmp_path: Path, evented: str) -> None:
    stack = Stack(tmp_path, env_overrides={"RELAY_DELIVERY_EVENTED": evented,
                                           "RELAY_RETRY_DELAYS": "0.2,0.2,0.2,0.2,0.2"}).start()
    try:
        stack.set_behaviour(fail_rate=0.3, drop_rate=0.1, seed=11)  # retried until accepted
        lead_ids = stack.post_leads(f"modes-{evented}", LEADS)

        def accepted() -> list[str]:
            return [r["lead_id"] for r in stack.received() if r["answer"]["fate"] == "accepted"]

        assert wait_until(lambda: len(accepted()) >= LEADS)
        assert sorted(accepted()) == sorted(lead_ids)
        way = "one evented sender" if evented == "1" else "a thread per call"
        assert f"delivering with {way}, up to 64 calls in flight" in stack.logs()  # the setting took
    finally:
        stack.stop()
