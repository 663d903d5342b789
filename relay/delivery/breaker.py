"""A circuit breaker per Trackdrive base URL.

While Trackdrive is down, sending every due lead only burns each lead's
retries. After ``failures`` consecutive transient failures (connection errors,
timeouts, 5xx) the breaker for that base URL opens: leads are put back
untouched until it half-opens after a cool-down, when a single probe goes
through. A probe that succeeds closes the breaker; one that fails opens it
again with the cool-down doubled, up to a cap.

Any answer that proves the server is up (a 2xx, a 4xx, a 429) counts as a
success; outcomes that say nothing about the server (a missing secret) count
as nothing.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import urlsplit

from relay.delivery.outcome import Delivered, Failed, Outcome, RetryLater
from relay.mapping.model import ENV_REF, TrackdriveCall

log = logging.getLogger("relay.delivery")

TRANSIENT_REASONS = frozenset({"connection_error", "timeout", "server_error"})

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class BreakerSettings:
    # Consecutive transient failures that open the breaker; 0 turns it off. High enough that a
    # Trackdrive that fails a third of its calls is not "down" and never trips it (0.3**20 ~ 1e-11).
    failures: int = 20
    cooldown_s: float = 5.0
    max_cooldown_s: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BreakerSettings:
        defaults = cls()
        return cls(failures=int(env.get("RELAY_BREAKER_FAILURES", defaults.failures)),
                   cooldown_s=float(env.get("RELAY_BREAKER_COOLDOWN", defaults.cooldown_s)),
                   max_cooldown_s=float(env.get("RELAY_BREAKER_MAX_COOLDOWN", defaults.max_cooldown_s)))

    @property
    def enabled(self) -> bool:
        return self.failures > 0


def verdict(outcome: Outcome) -> bool | None:
    """True: the server answered; False: a transient failure; None: says nothing about it."""
    if isinstance(outcome, RetryLater):
        if outcome.reason in TRANSIENT_REASONS:
            return False
        return True if outcome.status is not None else None
    if isinstance(outcome, Delivered):
        return True
    if isinstance(outcome, Failed):
        return True if outcome.status is not None else None
    return None


class Breaker:
    """The breaker of one base URL. Not thread-safe alone: :class:`Breakers` locks around it."""

    def __init__(self, key: str, settings: BreakerSettings) -> None:
        self.key = key
        self.settings = settings
        self.state = CLOSED
        self.failures = 0
        self.cooldown_s = settings.cooldown_s
        self.reopen_at = 0.0
        self.probe_until = 0.0  # while half-open: a probe is out until then

    def admit(self, now: float) -> float | None:
        """None when a send may go ahead now, else the time to try again."""
        if self.state == CLOSED:
            return None
        if self.state == OPEN:
            if now < self.reopen_at:
                return self.reopen_at
            self._change(HALF_OPEN, now)
        if now < self.probe_until:
            return now + self.settings.cooldown_s
        # A probe that never reports (its send was abandoned) must not wedge the breaker.
        self.probe_until = now + self.settings.max_cooldown_s
        return None

    def record(self, answered: bool | None, now: float) -> None:
        if answered is None:
            return
        if answered:
            self.failures = 0
            self.cooldown_s = self.settings.cooldown_s
            if self.state != CLOSED:
                self._change(CLOSED, now)
            return
        self.failures += 1
        if self.state == HALF_OPEN:
            self.cooldown_s = min(self.settings.max_cooldown_s, self.cooldown_s * 2)
            self._open(now)
        elif self.state == CLOSED and self.failures >= self.settings.failures:
            self._open(now)

    def _open(self, now: float) -> None:
        self.reopen_at = now + self.cooldown_s
        self.probe_until = 0.0
        self._change(OPEN, now)

    def _change(self, state: str, now: float) -> None:
        previous, self.state = self.state, state
        level = logging.WARNING if state == OPEN else logging.INFO
        log.log(level, "delivery breaker for %s: %s -> %s", self.key, previous, state,
                extra={"event": "breaker", "base_url": self.key, "state": state, "previous": previous,
                       "failures": self.failures,
                       "reopen_in_s": round(self.reopen_at - now, 1) if state == OPEN else None})


class Breakers:
    """The breakers of every base URL a dispatcher sends to."""

    def __init__(self, settings: BreakerSettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings or BreakerSettings()
        self.clock = clock
        self._breakers: dict[str, Breaker] = {}
        self._lock = threading.Lock()

    def admit(self, key: str) -> float | None:
        """None: send now. Otherwise the time until which the lead should wait, untouched."""
        if not self.settings.enabled:
            return None
        with self._lock:
            return self._breaker(key).admit(self.clock())

    def record(self, key: str, outcome: Outcome) -> None:
        if not self.settings.enabled:
            return
        answered = verdict(outcome)
        with self._lock:
            self._breaker(key).record(answered, self.clock())

    def state_of(self, key: str) -> str:
        with self._lock:
            breaker = self._breakers.get(key)
            return breaker.state if breaker is not None else CLOSED

    def _breaker(self, key: str) -> Breaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = Breaker(key, self.settings)
        return breaker


def base_url_key(call: TrackdriveCall, env: Mapping[str, str], default_base_url: str) -> str:
    """scheme://host[:port] the call goes to: what one breaker covers (never a path or query)."""
    base = call.base_url or default_base_url
    match = ENV_REF.match(base)
    if match:
        base = env.get(match.group(1)) or base
    try:
        parts = urlsplit(base)
    except ValueError:
        return base
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{netloc}".lower() if parts.scheme else base
