"""Graceful drain of a gunicorn worker on SIGTERM.

A load balancer only stops sending to an instance after its readiness check
fails a few times. So a SIGTERM first marks the worker as draining (``/readyz``
answers 503), the worker keeps serving for ``RELAY_DRAIN_SECONDS`` while the
balancer notices, and only then does gunicorn's own graceful shutdown begin:
stop accepting, finish the requests in flight, stop the dispatcher.

The master gives its workers ``graceful_timeout`` seconds from the SIGTERM
before it kills them, so the drain window must be shorter than that.
"""
from __future__ import annotations

import logging
import signal
import threading
from typing import Any, Callable

from relay.web.state import RelayState

log = logging.getLogger("relay.web")

ExitHandler = Callable[[int, Any], None]


def drain_seconds(configured_s: float, graceful_timeout_s: float | None = None) -> float:
    """The drain window: RELAY_DRAIN_SECONDS, kept a second short of the graceful timeout."""
    seconds = max(0.0, configured_s)
    if graceful_timeout_s is not None and seconds > graceful_timeout_s - 1:
        # Past the graceful timeout the master kills the worker with requests in flight.
        seconds = max(0.0, graceful_timeout_s - 1)
    return seconds


class Drain:
    """Turns one SIGTERM into: draining flag now, the real exit handler after ``seconds``."""

    def __init__(self, state: RelayState, exit_handler: ExitHandler, seconds: float) -> None:
        self.state = state
        self.exit_handler = exit_handler
        self.seconds = seconds
        self._timer: threading.Timer | None = None

    def on_sigterm(self, signum: int, frame: Any) -> None:
        if self.state.draining:
            return  # the master repeats the signal to every worker; one drain is enough
        self.state.draining = True
        log.info("draining for %gs before shutting down", self.seconds,
                 extra={"event": "drain_started", "drain_s": self.seconds})
        if self.seconds <= 0:
            self.exit_handler(signum, frame)
            return
        self._timer = threading.Timer(self.seconds, self._finish, args=(signum,))
        self._timer.daemon = True
        self._timer.start()

    def _finish(self, signum: int) -> None:
        log.info("drain window over; finishing requests in flight", extra={"event": "drain_finished"})
        self.exit_handler(signum, None)


def install(worker: Any, state: RelayState) -> Drain:
    """Replace the worker's SIGTERM handler (run from post_worker_init, in the main thread)."""
    seconds = drain_seconds(state.settings.drain_s, float(worker.cfg.graceful_timeout))
    drain = Drain(state, worker.handle_exit, seconds)
    signal.signal(signal.SIGTERM, drain.on_sigterm)
    signal.siginterrupt(signal.SIGTERM, False)
    return drain
