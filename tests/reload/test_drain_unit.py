"""The drain's SIGTERM handler, without a server: flag first, the real exit after the window."""
from __future__ import annotations

import signal
import threading
from types import SimpleNamespace

from relay.runtime.drain import Drain, drain_seconds


def test_flag_first_then_exit_after_the_window():
    state = SimpleNamespace(draining=False)
    exited = threading.Event()
    calls: list[int] = []

    def exit_handler(signum: int, frame: object) -> None:
        calls.append(signum)
        exited.set()

    drain = Drain(state, exit_handler, seconds=0.2)
    drain.on_sigterm(signal.SIGTERM, None)
    assert state.draining is True
    drain.on_sigterm(signal.SIGTERM, None)  # the master's copy of the signal: ignored
    assert exited.wait(30)
    assert calls == [signal.SIGTERM]


def test_no_window_exits_at_once():
    state = SimpleNamespace(draining=False)
    calls: list[int] = []
    Drain(state, lambda signum, frame: calls.append(signum), seconds=0).on_sigterm(signal.SIGTERM, None)
    assert state.draining and calls == [signal.SIGTERM]


def test_drain_seconds():
    assert drain_seconds(5.0) == 5.0
    assert drain_seconds(1.5, graceful_timeout_s=20) == 1.5
    assert drain_seconds(30.0, graceful_timeout_s=20) == 19
