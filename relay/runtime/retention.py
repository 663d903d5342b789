"""The periodic retention run: one worker of all instances at a time blanks expired personal data.

Every worker runs this thread; each interval the store hands the turn to one of them
(``Store.take_turn``), which redacts the leads past their status's retention. The redaction
is one transaction and idempotent, so even two runs at once would do no harm.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time

from relay.settings import Settings
from relay.store.base import Store

log = logging.getLogger("relay.retention")

TASK = "retention"
CHECK_EVERY_S = 60.0  # how often a worker asks for the turn; the turn itself comes once an interval


class RetentionRunner:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.retention = dict(settings.retention)
        self.interval_s = settings.retention_interval_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="relay-retention", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def run_once(self, now: float | None = None) -> int | None:
        """Redact if it is this worker's turn; how many leads, or None when it was not."""
        now = time.time() if now is None else now
        if not self.store.take_turn(TASK, self.owner, self.interval_s, now):
            return None
        cutoffs = {status: now - age_s for status, age_s in self.retention.items()}
        redacted = self.store.redact(cutoffs, now)
        log.info("retention: %d leads redacted", redacted,
                 extra={"event": "retention_run", "redacted": redacted, "result": "redacted"})
        return redacted

    def _run(self) -> None:
        while not self._stopping.wait(min(CHECK_EVERY_S, self.interval_s)):
            try:
                self.run_once()
            except Exception as exc:  # the next turn tries again; the store may be back by then
                log.warning("retention run failed: %s", type(exc).__name__,
                            extra={"event": "retention_run", "result": "store_error"})


def start_retention(store: Store, settings: Settings) -> RetentionRunner | None:
    if not settings.retention:
        return None
    runner = RetentionRunner(store, settings)
    runner.start()
    return runner
