"""A token bucket that paces every send of the process."""
from __future__ import annotations

import threading
import time
from typing import Callable


class TokenBucket:
    """``rate_per_s`` tokens a second, up to ``burst`` saved; rate 0 means unlimited."""

    def __init__(self, rate_per_s: float, burst: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s < 0:
            raise ValueError("rate must not be negative")
        self.rate_per_s = rate_per_s
        self.burst = max(1.0, burst if burst is not None else rate_per_s)
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    @property
    def unlimited(self) -> bool:
        return self.rate_per_s <= 0

    def reserve(self) -> float:
        """Take one token now and return how long to wait before using it."""
        if self.unlimited:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate_per_s)
            self._last = now
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self.rate_per_s

    def acquire(self, cancel: threading.Event | None = None) -> bool:
        """Wait for a token; False if ``cancel`` was set while waiting."""
        wait_s = self.reserve()
        if wait_s <= 0:
            return True
        if cancel is None:
            time.sleep(wait_s)
            return True
        return not cancel.wait(wait_s)
