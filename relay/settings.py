"""The relay's one set of settings, built once from the environment and checked at start.

No other module reads ``os.environ``: each takes what it needs from a
:class:`Settings`. A bad value stops the start with one message that names the
variable and the forms it accepts (:class:`SettingsError`), instead of one
module crashing and another quietly falling back.

``env`` keeps the whole environment too, because mapping files name their
secrets as ``${ENV_NAME}`` and those names are only known once the mappings load.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Mapping, TypeVar

from relay.words import FALSE_WORDS, TRUE_WORDS, boolean_word

T = TypeVar("T")

SQLITE_SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# Statuses whose personal data may be redacted: those that will never be sent again on their own.
RETENTION_STATUSES = ("delivered", "dead", "rejected", "dropped")
DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
ADMIN_TOKEN_ENV = "RELAY_ADMIN_TOKEN"
ADMIN_READONLY_TOKEN_ENV = "RELAY_ADMIN_READONLY_TOKEN"
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Quick tries first for speed to call, then the long tail for outages (see relay.delivery.retry).
DEFAULT_RETRY_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 300.0, 1800.0, 10800.0, 86400.0)


class SettingsError(ValueError):
    """A variable holds a value the relay cannot use; the message names it and the accepted forms."""

    def __init__(self, variable: str, value: str, accepted: str) -> None:
        super().__init__(f"{variable}={value!r} is not valid: expected {accepted}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/relay.db"
    mappings_dir: str = "mappings"
    trackdrive_base_url: str = "https://trackdrive.com"
    # gunicorn
    bind: str = "0.0.0.0:8080"
    workers: int = 2
    threads: int = 16
    timeout_s: int = 30
    graceful_timeout_s: int = 20
    forwarded_allow_ips: str = "127.0.0.1"
    request_read_timeout_s: float = 10.0  # a request must arrive whole within this, or 408
    request_buffer_bytes: int = 1024 * 1024  # read ahead of the threads; larger bodies stream
    gunicorn_conf: str = ""
    # receiving
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    sqlite_synchronous: str = "FULL"
    sqlite_commit_delay_ms: float = 2.0  # a busy commit waits this long for more writes to share it
    rate_limit_per_s: float = 0.0
    mappings_poll_s: float = 1.0
    last_good_dir: str = ""  # "": next to the SQLite outbox, else var/last-good-mappings
    drain_s: float = 5.0
    # delivering
    delivery_enabled: bool = True
    delivery_concurrency: int = 64  # calls in flight per process
    delivery_evented: bool = True  # one sender loop per process instead of a thread per call
    delivery_rate: float = 0.0  # calls/s per process; 0 = unlimited
    connect_timeout_s: float = 3.05
    read_timeout_s: float = 15.0
    lease_s: float = 60.0
    poll_interval_s: float = 1.0
    retry_delays_s: tuple[float, ...] = DEFAULT_RETRY_DELAYS_S
    retry_jitter: float = 0.2
    breaker_failures: int = 20
    breaker_cooldown_s: float = 5.0
    breaker_max_cooldown_s: float = 60.0
    # operating
    admin_token_env: str = ADMIN_TOKEN_ENV
    admin_readonly_token_env: str = ADMIN_READONLY_TOKEN_ENV
    console_session_hours: float = 12.0
    log_level: str = "info"
    access_log: bool = False
    metrics_dir: str = ""
    retention: tuple[tuple[str, float], ...] = ()  # (status, seconds): personal data kept that long
    retention_interval_s: float = 600.0
    sandbox_port: int = 8089
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Every setting read and checked; raises :class:`SettingsError` on the first bad value."""
        source = dict(os.environ if env is None else env)
        read = _Reader(source)
        return cls(
            database_url=read.text("RELAY_DATABASE_URL", cls.database_url),
            mappings_dir=read.text("RELAY_MAPPINGS_DIR", cls.mappings_dir),
            trackdrive_base_url=read.url("TRACKDRIVE_BASE_URL", cls.trackdrive_base_url),
            bind=read.text("RELAY_BIND", cls.bind),
            workers=read.integer("RELAY_WORKERS", cls.workers, minimum=1),
            threads=read.integer("RELAY_THREADS", cls.threads, minimum=1),
            timeout_s=read.integer("RELAY_TIMEOUT", cls.timeout_s, minimum=1),
            graceful_timeout_s=read.integer("RELAY_GRACEFUL_TIMEOUT", cls.graceful_timeout_s, minimum=1),
            forwarded_allow_ips=read.text("RELAY_FORWARDED_ALLOW_IPS", cls.forwarded_allow_ips),
            request_read_timeout_s=read.number("RELAY_REQUEST_READ_TIMEOUT", cls.request_read_timeout_s,
                                               positive=True),
            request_buffer_bytes=read.integer("RELAY_REQUEST_BUFFER", cls.request_buffer_bytes, minimum=1024),
            gunicorn_conf=read.text("RELAY_GUNICORN_CONF", cls.gunicorn_conf),
            trusted_proxies=read.items("RELAY_TRUSTED_PROXIES", cls.trusted_proxies),
            sqlite_synchronous=read.choice("RELAY_SQLITE_SYNCHRONOUS", cls.sqlite_synchronous,
                                           SQLITE_SYNCHRONOUS_MODES, upper=True),
            sqlite_commit_delay_ms=read.number("RELAY_SQLITE_COMMIT_DELAY_MS", cls.sqlite_commit_delay_ms),
            rate_limit_per_s=read.number("RELAY_RATE_LIMIT", cls.rate_limit_per_s),
            mappings_poll_s=read.number("RELAY_MAPPINGS_POLL", cls.mappings_poll_s),
            last_good_dir=read.text("RELAY_LAST_GOOD_DIR", cls.last_good_dir),
            drain_s=read.number("RELAY_DRAIN_SECONDS", cls.drain_s),
            delivery_enabled=read.boolean("RELAY_DELIVERY", cls.delivery_enabled),
            delivery_concurrency=read.integer("RELAY_DELIVERY_CONCURRENCY", cls.delivery_concurrency,
                                              minimum=1),
            delivery_evented=read.boolean("RELAY_DELIVERY_EVENTED", cls.delivery_evented),
            delivery_rate=read.number("RELAY_DELIVERY_RATE", cls.delivery_rate),
            connect_timeout_s=read.number("RELAY_CONNECT_TIMEOUT", cls.connect_timeout_s, positive=True),
            read_timeout_s=read.number("RELAY_READ_TIMEOUT", cls.read_timeout_s, positive=True),
            lease_s=read.number("RELAY_LEASE_SECONDS", cls.lease_s, positive=True),
            poll_interval_s=read.number("RELAY_POLL_INTERVAL", cls.poll_interval_s, positive=True),
            retry_delays_s=read.numbers("RELAY_RETRY_DELAYS", cls.retry_delays_s),
            retry_jitter=read.fraction("RELAY_RETRY_JITTER", cls.retry_jitter),
            breaker_failures=read.integer("RELAY_BREAKER_FAILURES", cls.breaker_failures, minimum=0),
            breaker_cooldown_s=read.number("RELAY_BREAKER_COOLDOWN", cls.breaker_cooldown_s, positive=True),
            breaker_max_cooldown_s=read.number("RELAY_BREAKER_MAX_COOLDOWN", cls.breaker_max_cooldown_s,
                                               positive=True),
            console_session_hours=read.number("RELAY_CONSOLE_SESSION_HOURS", cls.console_session_hours,
                                              positive=True),
            log_level=read.choice("RELAY_LOG_LEVEL", cls.log_level, LOG_LEVELS),
            access_log=read.boolean("RELAY_ACCESS_LOG", cls.access_log),
            metrics_dir=read.text(METRICS_DIR_ENV, cls.metrics_dir),
            retention=read.retention("RELAY_RETENTION", cls.retention),
            retention_interval_s=read.number("RELAY_RETENTION_INTERVAL", cls.retention_interval_s, positive=True),
            sandbox_port=read.integer("RELAY_SANDBOX_PORT", cls.sandbox_port, minimum=1),
            env=source,
        )

    @property
    def last_good_path(self) -> str:
        """Where each source's last mapping that compiled is kept across restarts."""
        if self.last_good_dir:
            return self.last_good_dir
        if self.database_url.startswith("sqlite:///"):
            database = self.database_url.removeprefix("sqlite:///").split("?", 1)[0]
            return os.path.join(os.path.dirname(database) or ".", "last-good-mappings")
        return os.path.join("var", "last-good-mappings")

    def secret(self, name: str) -> str | None:
        """The value of a ``${NAME}`` a mapping references; blank counts as unset."""
        value = self.env.get(name)
        return value if value and value.strip() else None



def variables() -> list[str]:
    """Every variable the relay reads, for the README's table and a test that keeps them in step."""
    return sorted(_Reader.seen)


class _Reader:
    """Reads one variable at a time, turning each bad value into a SettingsError that names it."""

    seen: ClassVar[set[str]] = set()

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def _raw(self, name: str) -> str | None:
        _Reader.seen.add(name)
        value = self.env.get(name)
        return None if value is None or not value.strip() else value.strip()

    def _parsed(self, name: str, default: T, parse: Callable[[str], T], accepted: str) -> T:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError:
            raise SettingsError(name, raw, accepted) from None

    def text(self, name: str, default: str) -> str:
        raw = self._raw(name)
        return default if raw is None else raw

    def url(self, name: str, default: str) -> str:
        def parse(raw: str) -> str:
            if not raw.startswith(("http://", "https://")):
                raise ValueError(raw)
            return raw.rstrip("/")
        return self._parsed(name, default, parse, "an http(s) URL such as https://acme.trackdrive.com")

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        def parse(raw: str) -> int:
            value = int(raw)
            if value < minimum:
                raise ValueError(raw)
            return value
        return self._parsed(name, default, parse, f"a whole number of at least {minimum}")

    def number(self, name: str, default: float, *, positive: bool = False) -> float:
        def parse(raw: str) -> float:
            value = float(raw)
            if not math.isfinite(value) or value < 0 or (positive and value == 0):
                raise ValueError(raw)
            return value
        accepted = "a number greater than 0" if positive else "a number of at least 0"
        return self._parsed(name, default, parse, accepted)

    def fraction(self, name: str, default: float) -> float:
        def parse(raw: str) -> float:
            value = float(raw)
            if not 0 <= value <= 1:
                raise ValueError(raw)
            return value
        return self._parsed(name, default, parse, "a number from 0 to 1")

    def numbers(self, name: str, default: tuple[float, ...]) -> tuple[float, ...]:
        def parse(raw: str) -> tuple[float, ...]:
            values = tuple(float(part) for part in raw.replace(" ", "").split(",") if part)
            if not values or any(not math.isfinite(v) or v < 0 for v in values):
                raise ValueError(raw)
            return values
        return self._parsed(name, default, parse, "comma-separated seconds such as 5,30,120")

    def retention(self, name: str, default: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
        def parse(raw: str) -> tuple[tuple[str, float], ...]:
            kept: dict[str, float] = {}
            for part in (p.strip() for p in raw.split(",") if p.strip()):
                status, _, age = part.partition(":")
                status, age = status.strip().lower(), age.strip().lower()
                if status not in RETENTION_STATUSES or len(age) < 2 or age[-1] not in DURATION_UNITS:
                    raise ValueError(raw)
                seconds = float(age[:-1]) * DURATION_UNITS[age[-1]]
                if not math.isfinite(seconds) or seconds <= 0:
                    raise ValueError(raw)
                kept[status] = seconds
            return tuple(sorted(kept.items()))
        accepted = ("status:age pairs such as delivered:30d,dropped:7d (statuses "
                    + ", ".join(RETENTION_STATUSES) + "; ages in s, m, h, d or w)")
        return self._parsed(name, default, parse, accepted)

    def items(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        raw = self._raw(name)
        if raw is None:
            return default
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    def boolean(self, name: str, default: bool) -> bool:
        def parse(raw: str) -> bool:
            value = boolean_word(raw)
            if value is None:
                raise ValueError(raw)
            return value
        words = "/".join(sorted(TRUE_WORDS)) + " or " + "/".join(sorted(FALSE_WORDS))
        return self._parsed(name, default, parse, words)

    def choice(self, name: str, default: str, choices: tuple[str, ...], *, upper: bool = False) -> str:
        def parse(raw: str) -> str:
            value = raw.upper() if upper else raw.lower()
            if value not in choices:
                raise ValueError(raw)
            return value
        return self._parsed(name, default, parse, "one of " + ", ".join(choices))

