"""What one running app holds: settings, sources, the outbox and the dispatcher."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from flask import Flask, current_app

from relay.config import Settings
from relay.store.base import Store
from relay.web.ratelimit import RateLimiter
from relay.web.registry import SourceRegistry

EXTENSION = "relay"


@dataclass
class RelayState:
    settings: Settings
    env: Mapping[str, str]
    registry: SourceRegistry
    store: Store
    limiter: RateLimiter
    dispatcher: Any = None  # relay.delivery.dispatcher.Dispatcher, built by start_delivery
    delivery_started: bool = False
    draining: bool = False  # set on shutdown; /readyz answers 503 so the load balancer moves away


def relay_state(app: Flask | None = None) -> RelayState:
    return (app or current_app).extensions[EXTENSION]
