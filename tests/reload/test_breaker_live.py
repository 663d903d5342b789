"""The breaker through a real relay and the real sandbox: Trackdrive down, then back."""
from __future__ import annotations

from pathlib import Path

import requests

from relay.store import open_store
from tests.reload.live import PHONE, start_stack
from tests.support.stack import wait_until


def test_breaker_holds_leads_while_trackdrive_is_down_then_delivers(tmp_path: Path):
    stack = start_stack(tmp_path, workers=2, RELAY_BREAKER_FAILURES="2", RELAY_BREAKER_COOLDOWN="0.5",
                        RELAY_BREAKER_MAX_COOLDOWN="2", RELAY_RETRY_DELAYS=",".join(["1"] * 20))
    outbox = open_store(stack.database_url, synchronous="NORMAL")
    try:
        stack.set_behaviour(fail_rate=1.0)
        lead_ids = [requests.post(f"{stack.url}/hooks/acme", json=PHONE, timeout=30).json()["lead_id"]
                    for _ in range(12)]
        assert wait_until(lambda: '"state": "open"' in stack.relay.log()), stack.logs()
        never_tried = [lead_id for lead_id in lead_ids if outbox.get(lead_id).attempts == 0]
        assert never_tried, "with the breaker open, later leads must wait without spending attempts"

        stack.set_behaviour(fail_rate=0.0)
        assert wait_until(lambda: all(outbox.get(i).status == "delivered" for i in lead_ids)), stack.logs()
        assert all(outbox.get(i).attempts <= 3 for i in never_tried)
        assert '"state": "closed"' in stack.relay.log()
    finally:
        outbox.close()
        stack.stop()
