"""Gunicorn settings for the relay; ``gunicorn.conf.py`` at the project root re-exports them.

Each worker is a full relay: it receives leads and runs its own dispatcher, so
one command starts both. On SIGTERM gunicorn stops accepting, lets requests in
flight finish, then each worker stops its dispatcher; leads still queued stay in
the outbox for the next start.
"""
from __future__ import annotations

import os
from typing import Any

wsgi_app = "relay.web:create_app()"
bind = os.environ.get("RELAY_BIND", "0.0.0.0:8080")
workers = int(os.environ.get("RELAY_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("RELAY_THREADS", "8"))
timeout = int(os.environ.get("RELAY_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("RELAY_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
forwarded_allow_ips = os.environ.get("RELAY_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("RELAY_ACCESS_LOG", "-")
# The relay is driven by signals only; a shared default control socket path would
# collide between two relays on one host.
control_socket_disable = True


def on_starting(server: Any) -> None:
    """Migrate once in the master, before workers race to do it."""
    from relay.config import Settings
    from relay.store import open_store

    settings = Settings.from_env()
    open_store(settings.database_url, synchronous=settings.sqlite_synchronous).close()


def post_worker_init(worker: Any) -> None:
    """Start this worker's dispatcher.

    Not post_fork: gunicorn loads the app after post_fork, and the dispatcher
    needs the app's outbox (opened after the fork, never shared across it).
    """
    from relay.web import start_delivery

    start_delivery(worker.wsgi)


def worker_exit(server: Any, worker: Any) -> None:
    """Stop claiming and give back leads not yet sent, so another worker takes them."""
    from relay.web import stop_delivery

    app = getattr(worker, "wsgi", None)
    if app is not None and hasattr(app, "extensions"):
        stop_delivery(app, timeout_s=max(1.0, float(server.cfg.graceful_timeout) / 2))
