"""Process-wide settings, read once from environment variables."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.replace(" ", "").split(",") if part)


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/relay.db"
    mappings_dir: str = "mappings"
    trackdrive_base_url: str = "https://trackdrive.com"
    delivery_concurrency: int = 64  # per process; threads mostly wait on Trackdrive
    delivery_rate: float = 0.0  # calls/s per process; 0 = unlimited
    connect_timeout_s: float = 3.05
    read_timeout_s: float = 15.0
    lease_s: float = 60.0
    poll_interval_s: float = 1.0
    retry_delays_s: tuple[float, ...] = (5, 30, 120, 600, 1800, 3600, 10800, 21600, 43200, 86400)
    retry_jitter: float = 0.2
    sqlite_synchronous: str = "FULL"
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    admin_token_env: str = "RELAY_ADMIN_TOKEN"
    delivery_enabled: bool = True
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        get = env.get
        defaults = cls()
        return cls(
            database_url=get("RELAY_DATABASE_URL", defaults.database_url),
            mappings_dir=get("RELAY_MAPPINGS_DIR", defaults.mappings_dir),
            trackdrive_base_url=get("TRACKDRIVE_BASE_URL", defaults.trackdrive_base_url),
            delivery_concurrency=int(get("RELAY_DELIVERY_CONCURRENCY", defaults.delivery_concurrency)),
            delivery_rate=float(get("RELAY_DELIVERY_RATE", defaults.delivery_rate)),
            connect_timeout_s=float(get("RELAY_CONNECT_TIMEOUT", defaults.connect_timeout_s)),
            read_timeout_s=float(get("RELAY_READ_TIMEOUT", defaults.read_timeout_s)),
            lease_s=float(get("RELAY_LEASE_SECONDS", defaults.lease_s)),
            poll_interval_s=float(get("RELAY_POLL_INTERVAL", defaults.poll_interval_s)),
            retry_delays_s=_floats(get("RELAY_RETRY_DELAYS", "")) or defaults.retry_delays_s,
            retry_jitter=float(get("RELAY_RETRY_JITTER", defaults.retry_jitter)),
            sqlite_synchronous=get("RELAY_SQLITE_SYNCHRONOUS", defaults.sqlite_synchronous).upper(),
            trusted_proxies=tuple(
                p.strip() for p in get("RELAY_TRUSTED_PROXIES", "127.0.0.1,::1").split(",") if p.strip()),
            delivery_enabled=get("RELAY_DELIVERY", "on").lower() not in ("0", "off", "false", "no"),
            env=env,
        )
