"""When to try a lead again, as a small immutable value (after urllib3's ``Retry``)."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

# Quick retries first (a lead is worth most in its first minutes: seven tries within about
# 90 s), then the long tail for outages; the circuit breaker keeps an outage from being
# hammered, since a lead it pauses spends no attempt. bench/retry_schedule.py compares schedules.
DEFAULT_DELAYS: tuple[float, ...] = (1, 2, 5, 10, 20, 40, 300, 1800, 10800, 86400)


@dataclass(frozen=True)
class RetryPolicy:
    delays: tuple[float, ...] = DEFAULT_DELAYS
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if any(delay < 0 for delay in self.delays):
            raise ValueError("retry delays must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError("retry jitter must be between 0 and 1")

    @property
    def max_delay(self) -> float:
        return max(self.delays, default=0.0)

    def next_delay(self, attempt: int, retry_after_s: float | None = None,
                   rand: Callable[[], float] = random.random) -> float | None:
        """Seconds until the next attempt, or None when the lead is a dead letter.

        ``attempt`` counts the attempts made so far, starting at 1.
        """
        if attempt < 1 or attempt > len(self.delays):
            return None
        delay = self._jittered(self.delays[attempt - 1], rand)
        if retry_after_s is not None:
            # The server's wish is a floor, but never strand a lead beyond the longest delay.
            delay = max(delay, min(retry_after_s, self.max_delay))
        return max(0.0, delay)

    def _jittered(self, delay: float, rand: Callable[[], float]) -> float:
        # Spread retries so leads that failed together don't come back together.
        return delay * (1.0 + self.jitter * (2.0 * rand() - 1.0))
