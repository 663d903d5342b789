"""What one running app holds: settings, sources, the outbox and the dispatcher."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from flask import Flask, current_app

from relay.intake.ratelimit import RateLimiter
from relay.intake.registry import SourceRegistry
from relay.settings import Settings
from relay.store.base import Store

EXTENSION = "relay"


@dataclass
class RelayState:
    settings: Settings
    registry: SourceRegistry
    store: Store
    limiter: RateLimiter
    dispatcher: Any = None  # relay.delivery.dispatcher.Dispatcher, built by relay.runtime in a worker
    delivery_started: bool = False
    draining: bool = False  # set on shutdown; /readyz answers 503 so the load balancer moves away

    @property
    def env(self) -> Mapping[str, str]:
        """Where ``${NAME}`` secrets are looked up: the environment the settings were read from."""
        return self.settings.env


def relay_state(app: Flask | None = None) -> RelayState:
    return (app or current_app).extensions[EXTENSION]  # type: ignore[no-any-return]
