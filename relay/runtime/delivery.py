"""The dispatcher's life inside one web process (a gunicorn worker)."""
from __future__ import annotations

import logging
import os
import socket
import uuid

from flask import Flask

from relay.delivery.breaker import Breakers, BreakerSettings
from relay.delivery.client import TrackdriveClient
from relay.delivery.dispatcher import Dispatcher
from relay.delivery.fetcher import Fetcher
from relay.delivery.retry import RetryPolicy
from relay.web.state import RelayState, relay_state

log = logging.getLogger("relay.delivery")


def worker_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def build_dispatcher(state: RelayState) -> Dispatcher:
    settings = state.settings
    client = TrackdriveClient(settings.trackdrive_base_url, connect_timeout_s=settings.connect_timeout_s,
                              read_timeout_s=settings.read_timeout_s, env=settings.env,
                              pool_size=max(32, settings.delivery_concurrency))
    policy = RetryPolicy(settings.retry_delays_s, settings.retry_jitter)
    breakers = Breakers(BreakerSettings(failures=settings.breaker_failures,
                                        cooldown_s=settings.breaker_cooldown_s,
                                        max_cooldown_s=settings.breaker_max_cooldown_s))
    return Dispatcher(state.store, client, policy, owner=worker_owner(),
                      concurrency=settings.delivery_concurrency, rate_per_s=settings.delivery_rate,
                      lease_s=settings.lease_s, poll_interval_s=settings.poll_interval_s,
                      breakers=breakers, resolver=build_fetcher(state), evented=settings.delivery_evented)


def build_fetcher(state: RelayState) -> Fetcher:
    """The fetch stage over the app's registry: a reloaded mapping applies to leads already stored."""
    return Fetcher(state.registry, state.settings.env, pool_size=max(8, state.settings.delivery_concurrency))


def start_delivery(app: Flask) -> Dispatcher | None:
    """Build (unless one was given) and start this process's dispatcher; returns it or None."""
    state = relay_state(app)
    if state.dispatcher is None:
        if not state.settings.delivery_enabled:
            return None
        state.dispatcher = build_dispatcher(state)
    if not state.delivery_started:
        state.dispatcher.start()
        state.delivery_started = True
        way = "one evented sender" if state.dispatcher.evented else "a thread per call"
        log.info("delivering with %s, up to %d calls in flight", way, state.dispatcher.concurrency,
                 extra={"event": "delivery_started", "evented": state.dispatcher.evented})
    return state.dispatcher  # type: ignore[no-any-return]


def stop_delivery(app: Flask, timeout_s: float = 20.0) -> None:
    """Stop claiming; leads this process still holds are released for the next start."""
    state = relay_state(app)
    if state.dispatcher is not None and state.delivery_started:
        state.dispatcher.stop(timeout_s)
        state.delivery_started = False
