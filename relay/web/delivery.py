"""The dispatcher's life inside one web process (a gunicorn worker)."""
from __future__ import annotations

import logging
import os
import socket
import uuid
from concurrent.futures import Future, TimeoutError as FutureTimeout
from typing import Any

from flask import Flask

from relay.web.state import RelayState, relay_state

log = logging.getLogger("relay.web")


def worker_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def build_dispatcher(state: RelayState) -> Any:
    from relay.delivery.breaker import BreakerSettings, Breakers
    from relay.delivery.client import TrackdriveClient
    from relay.delivery.dispatcher import Dispatcher
    from relay.delivery.retry import RetryPolicy

    settings = state.settings
    client = TrackdriveClient(settings.trackdrive_base_url, connect_timeout_s=settings.connect_timeout_s,
                              read_timeout_s=settings.read_timeout_s, env=state.env,
                              pool_size=max(32, settings.delivery_concurrency))
    policy = RetryPolicy(settings.retry_delays_s, settings.retry_jitter)
    return Dispatcher(state.store, client, policy, owner=worker_owner(),
                      concurrency=settings.delivery_concurrency, rate_per_s=settings.delivery_rate,
                      lease_s=settings.lease_s, poll_interval_s=settings.poll_interval_s,
                      breakers=Breakers(BreakerSettings.from_env(state.env)))


def start_delivery(app: Flask) -> Any:
    """Build (unless one was given) and start this process's dispatcher; returns it or None."""
    state = relay_state(app)
    if state.dispatcher is None:
        if not state.settings.delivery_enabled:
            return None
        state.dispatcher = build_dispatcher(state)
    if not state.delivery_started:
        state.dispatcher.start()
        state.delivery_started = True
    return state.dispatcher


def stop_delivery(app: Flask, timeout_s: float = 20.0) -> None:
    """Stop claiming; leads this process still holds are released for the next start."""
    state = relay_state(app)
    if state.dispatcher is not None and state.delivery_started:
        state.dispatcher.stop(timeout_s)
        state.delivery_started = False


def reserve(state: RelayState) -> Any:
    """The dispatcher that will deliver the next stored lead itself, or None (poller's turn)."""
    dispatcher = state.dispatcher
    if dispatcher is None or not hasattr(dispatcher, "reserve"):
        return None
    return dispatcher if dispatcher.reserve() else None


def hand_over(dispatcher: Any, lead: Any) -> Future | None:
    try:
        return dispatcher.deliver_leased(lead)
    except Exception:
        log.exception("could not hand over lead %s; its lease expires and the poller sends it", lead.id)
        return None


def wait_for_outcome(future: Future | None, deadline_s: float) -> Any:
    if future is None:
        return None
    try:
        return future.result(timeout=max(0.0, deadline_s))
    except FutureTimeout:
        return None
    except Exception:
        log.exception("delivery failed while a sync request waited; the lead stays in the outbox")
        return None
