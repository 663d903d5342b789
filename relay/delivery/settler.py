"""One thread per worker that records what the evented sender finished, a batch at a time.

The sender's loop must never wait for the outbox, so the calls it finishes in one turn come
here together: one write records their attempts (one group commit, one disk sync), then their
attempt lines are logged, their slots freed and their futures resolved. Recording is
``record``'s job (the dispatcher's: breakers, settlements, the write, the log lines); this
module only owns the thread, the queue and the order of those steps.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable

from relay.delivery.outcome import Outcome, RetryLater
from relay.store.base import Lead

log = logging.getLogger("relay.delivery")

_NO_OUTCOME_YET: Outcome = RetryLater("error", None, "no outcome yet", None)


@dataclass(frozen=True)
class Sent:
    """A lead whose call is out (or could not be made), and what came of it once known."""

    lead: Lead
    target: str
    future: Future[Outcome | None] | None  # resolved once recorded; None when the caller waits itself
    started: float
    outcome: Outcome = _NO_OUTCOME_YET
    latency_s: float = 0.0


class Settler:
    def __init__(self, record: Callable[[list[Sent]], list[Outcome]], free: Callable[[int], None], *,
                 name: str = "relay-delivery-settler") -> None:
        self.record = record
        self.free = free  # gives back this many of the dispatcher's slots
        self.name = name
        self._lock = threading.Condition(threading.Lock())
        self._waiting: list[Sent] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._busy: Callable[[], bool] = lambda: False

    def start(self) -> None:
        if self._thread is not None:
            self._thread.join()  # one still finishing the last stop's calls
        with self._lock:
            self._stopping = False
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def add(self, sent: list[Sent]) -> None:
        with self._lock:
            self._waiting.extend(sent)
            self._lock.notify()

    def stop(self, timeout_s: float, *, busy: Callable[[], bool]) -> None:
        """End once nothing waits and ``busy()`` is false (calls still in flight are still recorded)."""
        with self._lock:
            self._stopping, self._busy = True, busy
            self._lock.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._waiting:
                    # A stop that timed out leaves calls in flight: their answers are still
                    # recorded, as a pool thread records its call's after a stop.
                    if self._stopping and not self._busy():
                        return
                    self._lock.wait(0.1 if self._stopping else None)
                sent, self._waiting = self._waiting, []
            self._settle(sent)

    def _settle(self, sent: list[Sent]) -> None:
        try:
            outcomes: list[Outcome | None] = list(self.record(sent))
        except Exception as exc:  # the thread must outlive any one batch's trouble
            log.exception("recording delivered leads failed unexpectedly: %s", type(exc).__name__,
                          extra={"result": "error"})
            outcomes = [None] * len(sent)
        for item, outcome in zip(sent, outcomes, strict=True):
            self.free(1)
            if item.future is not None:
                item.future.set_result(outcome)
