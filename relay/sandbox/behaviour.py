"""How the sandbox misbehaves: delays and injected faults, settable at runtime."""
from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

RATE_FIELDS = ("fail_rate", "rate_429", "timeout_rate", "drop_rate")


@dataclass(frozen=True)
class Behaviour:
    delay_ms: int = 0
    fail_rate: float = 0.0  # answer 5xx
    rate_429: float = 0.0  # answer 429 with Retry-After
    retry_after: float = 1.0  # seconds, sent with 429
    timeout_rate: float = 0.0  # hold the request past the client's read timeout
    timeout_s: float = 30.0
    drop_rate: float = 0.0  # close the connection without an answer
    seed: int | None = None
    tokens: tuple[str, ...] | None = None  # accepted lead tokens; None accepts any non-empty one

    def __post_init__(self) -> None:
        for name in RATE_FIELDS:
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.delay_ms < 0 or self.timeout_s < 0 or self.retry_after < 0:
            raise ValueError("delay_ms, timeout_s and retry_after must not be negative")

    def updated(self, changes: Mapping[str, Any]) -> Behaviour:
        """A copy with ``changes`` applied; ValueError names the first bad field."""
        known = {f.name: f for f in fields(self)}
        values: dict[str, Any] = {}
        for name, raw in changes.items():
            if name not in known:
                raise ValueError(f"unknown behaviour field {name!r}")
            values[name] = _coerce(name, raw)
        return replace(self, **values)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tokens"] = list(self.tokens) if self.tokens is not None else None
        return data


def _coerce(name: str, raw: Any) -> Any:
    if name == "tokens":
        if raw is None:
            return None
        if isinstance(raw, str):
            raw = [part for part in raw.split(",") if part]
        if not isinstance(raw, list) or not all(isinstance(t, str) and t for t in raw):
            raise ValueError("tokens must be a list of non-empty strings or null")
        return tuple(raw)
    if name == "seed":
        if raw is None:
            return None
        return _number(name, raw, int)
    if name == "delay_ms":
        return _number(name, raw, int)
    return _number(name, raw, float)


def _number(name: str, raw: Any, kind: type) -> Any:
    if isinstance(raw, bool):
        raise ValueError(f"{name} must be a number")
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number") from None
    if kind is int and isinstance(raw, float) and raw != value:
        raise ValueError(f"{name} must be a whole number")
    return value


class Dice:
    """Decides each request's fate from one seeded generator, so a seed replays a run."""

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self._random.seed(seed)

    def fate(self, behaviour: Behaviour) -> str:
        """One of: drop, timeout, rate_limited, fail, answer."""
        with self._lock:
            rolls = [self._random.random() for _ in range(4)]
        chances = (("drop", behaviour.drop_rate), ("timeout", behaviour.timeout_rate),
                   ("rate_limited", behaviour.rate_429), ("fail", behaviour.fail_rate))
        for (fate, chance), roll in zip(chances, rolls, strict=True):
            if roll < chance:
                return fate
        return "answer"

    def bits(self, count: int) -> int:
        with self._lock:
            return self._random.getrandbits(count)
