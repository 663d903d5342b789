from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import pytest
import requests

from relay.cli import build_parser
from relay.cli.sandbox import behaviour_from_args
from relay.sandbox import Behaviour, create_sandbox_app, sandbox_state, serve_in_thread
from relay.sandbox.server import LISTEN_BACKLOG, RunningSandbox

CONCURRENT = 160


@pytest.fixture
def slow_sandbox() -> Iterator[RunningSandbox]:
    running = serve_in_thread(create_sandbox_app(Behaviour(delay_ms=300)))
    yield running
    running.close()


def test_holds_many_slow_requests_at_once(slow_sandbox: RunningSandbox) -> None:
    # Every request must be in the server at the same time: each waits at the barrier first.
    barrier = threading.Barrier(CONCURRENT)

    def post(n: int) -> int:
        barrier.wait(60)
        response = requests.post(f"{slow_sandbox.url}/api/v1/leads?lead_token=t",
                                 json={"caller_id": "+15551234567"},
                                 headers={"X-Relay-Lead-Id": f"L{n}"}, timeout=60)
        return response.status_code

    with ThreadPoolExecutor(CONCURRENT) as pool:
        results = list(pool.map(post, range(CONCURRENT)))
    assert results == [201] * CONCURRENT
    stats = sandbox_state(slow_sandbox.app).recorder.stats()
    assert stats["accepted"] == CONCURRENT and stats["duplicates_accepted"] == 0
    assert slow_sandbox.server.request_queue_size == LISTEN_BACKLOG >= CONCURRENT


def test_drop_closes_the_connection_without_an_answer() -> None:
    running = serve_in_thread(create_sandbox_app(Behaviour(drop_rate=1.0)))
    try:
        with pytest.raises(requests.ConnectionError):
            requests.post(f"{running.url}/api/v1/leads?lead_token=t", json={}, timeout=10)
        stats = sandbox_state(running.app).recorder.stats()
        assert stats["accepted"] == 0 and stats["by_status"] == {"dropped": 1}
    finally:
        running.close()


def test_close_cuts_a_held_timeout_short() -> None:
    running = serve_in_thread(create_sandbox_app(Behaviour(timeout_rate=1.0, timeout_s=3600)))
    with pytest.raises(requests.Timeout):
        requests.post(f"{running.url}/api/v1/leads?lead_token=t", json={}, timeout=0.2)
    running.close()
    assert not running.thread.is_alive()


def test_cli_options_become_a_behaviour() -> None:
    args = build_parser().parse_args([
        "sandbox", "--port", "0", "--delay-ms", "50", "--fail-rate", "0.1", "--rate-429", "0.2",
        "--retry-after", "3", "--timeout-rate", "0.05", "--drop-rate", "0.01", "--seed", "9",
        "--tokens", "a,b"])
    assert args.func.__module__ == "relay.cli.sandbox"
    assert behaviour_from_args(args) == Behaviour(delay_ms=50, fail_rate=0.1, rate_429=0.2, retry_after=3,
                                                  timeout_rate=0.05, drop_rate=0.01, seed=9,
                                                  tokens=("a", "b"))


def test_cli_defaults() -> None:
    args = build_parser().parse_args(["sandbox"])
    assert (args.host, args.port) == ("127.0.0.1", 8089)
    assert behaviour_from_args(args) == Behaviour()
