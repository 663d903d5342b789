"""Gunicorn settings for the relay; ``gunicorn.conf.py`` at the project root re-exports them.

Each worker is a full relay: it receives leads and runs its own dispatcher, so
one command starts both. On SIGTERM gunicorn stops accepting, lets requests in
flight finish, then each worker stops its dispatcher; leads still queued stay in
the outbox for the next start.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from relay.logs import logging_config

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

wsgi_app = "relay.web:create_app()"
bind = os.environ.get("RELAY_BIND", "0.0.0.0:8080")
workers = int(os.environ.get("RELAY_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("RELAY_THREADS", "16"))
timeout = int(os.environ.get("RELAY_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("RELAY_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
forwarded_allow_ips = os.environ.get("RELAY_FORWARDED_ALLOW_IPS", "127.0.0.1")
# The relay logs one JSON line per request itself; RELAY_ACCESS_LOG=1 adds gunicorn's, as JSON too.
accesslog = "-" if os.environ.get("RELAY_ACCESS_LOG") else None
logconfig_dict = logging_config(os.environ.get("RELAY_LOG_LEVEL", "info"), access_log=accesslog is not None)
# Skips building gunicorn's access line while its logger is silenced.
logger_class = "relay.logs.GunicornLogger"
# The relay is driven by signals only; a shared default control socket path would
# collide between two relays on one host.
control_socket_disable = True


def on_starting(server: Any) -> None:
    """Prepare the metrics directory, then migrate once in the master, before workers race to do it."""
    use_metrics_dir(server)
    from relay.config import Settings
    from relay.store import open_store

    from relay.errors import StoreUnavailable

    settings = Settings.from_env()
    try:
        open_store(settings.database_url, synchronous=settings.sqlite_synchronous).close()
    except StoreUnavailable as exc:
        server.log.error("outbox unavailable at start, workers will retry: %s", exc)


def use_metrics_dir(server: Any) -> None:
    """Each worker writes its metrics to files in one directory, and a scrape adds them up.

    Chosen in the master before the first worker is forked, and emptied so a previous
    run's counts do not add up. Unset, a temporary directory is made and removed on exit.
    """
    if not os.environ.get(METRICS_DIR_ENV):
        server.relay_metrics_dir = os.environ[METRICS_DIR_ENV] = tempfile.mkdtemp(prefix="relay-prometheus-")
    from relay.metrics import select_storage, wipe_multiprocess_dir

    select_storage()
    wipe_multiprocess_dir()


def post_worker_init(worker: Any) -> None:
    """Start this worker's dispatcher, mapping watcher and SIGTERM drain.

    Not post_fork: gunicorn loads the app after post_fork, and the dispatcher
    needs the app's outbox (opened after the fork, never shared across it).
    """
    from relay.web import relay_state, start_delivery
    from relay.web import drain, reload

    start_delivery(worker.wsgi)
    state = relay_state(worker.wsgi)
    state.limiter.share_between(worker.cfg.workers)
    watcher = reload.start_watching(worker.wsgi)
    if watcher is not None:
        reload.reload_on_sighup(watcher)
    drain.install(worker, state)


def worker_exit(server: Any, worker: Any) -> None:
    """Stop claiming and give back leads not yet sent, so another worker takes them."""
    from relay.web import stop_delivery

    app = getattr(worker, "wsgi", None)
    if app is not None and hasattr(app, "extensions"):
        stop_delivery(app, timeout_s=max(1.0, float(server.cfg.graceful_timeout) / 2))


def child_exit(server: Any, worker: Any) -> None:
    from relay.metrics import mark_worker_dead

    mark_worker_dead(worker.pid)


def on_exit(server: Any) -> None:
    owned = getattr(server, "relay_metrics_dir", None)
    if owned:
        shutil.rmtree(owned, ignore_errors=True)
