"""What each gunicorn worker starts beside its app, and stops before it exits."""
from __future__ import annotations

from typing import Any

from relay.intake.watcher import MappingWatcher, reload_on_sighup, start_watching
from relay.runtime import drain
from relay.runtime.delivery import start_delivery, stop_delivery
from relay.runtime.retention import RetentionRunner, start_retention
from relay.web.state import relay_state

WATCHER_EXTENSION = "relay.watcher"
RETENTION_EXTENSION = "relay.retention"


def start_worker(worker: Any) -> None:
    """Dispatcher, mapping watcher with SIGHUP reload, and the SIGTERM drain (main thread only)."""
    app = worker.wsgi
    state = relay_state(app)
    start_delivery(app)
    state.limiter.share_between(worker.cfg.workers)
    watcher = start_watching(state.registry, state.settings.env, interval_s=state.settings.mappings_poll_s)
    if watcher is not None:
        app.extensions[WATCHER_EXTENSION] = watcher
        reload_on_sighup(watcher)
    retention = start_retention(state.store, state.settings)
    if retention is not None:
        app.extensions[RETENTION_EXTENSION] = retention
    drain.install(worker, state)


def stop_worker(worker: Any, timeout_s: float) -> None:
    app = getattr(worker, "wsgi", None)
    if app is None or not hasattr(app, "extensions"):
        return
    watcher: MappingWatcher | None = app.extensions.get(WATCHER_EXTENSION)
    if watcher is not None:
        watcher.stop()
    retention: RetentionRunner | None = app.extensions.get(RETENTION_EXTENSION)
    if retention is not None:
        retention.stop()
    stop_delivery(app, timeout_s=timeout_s)
    # Requests are over by now (gunicorn calls this after its loop); closing the outbox
    # lets SQLite fold its write-ahead log into the database file.
    relay_state(app).store.close()
