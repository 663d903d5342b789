"""Gunicorn settings for the relay; ``gunicorn.conf.py`` at the project root re-exports them.

Each worker is a full relay: it receives leads and runs its own dispatcher, so
one command starts both. On SIGTERM gunicorn stops accepting, lets requests in
flight finish, then each worker stops its dispatcher; leads still queued stay in
the outbox for the next start.

The master imports only this module, the settings, the logging setup and the worker class: the
Flask app is built in each worker (``wsgi_app``), never in the master.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from typing import Any

from relay.logs import logging_config
from relay.settings import METRICS_DIR_ENV, Settings, SettingsError


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        sys.stderr.write(f"relay: configuration error: {exc}\n")
        raise SystemExit(2) from None


settings = _settings()

# prometheus_client chooses per-process metric files only if this variable is set when it is
# first imported; setting it here, before any worker exists, means no module needs patching.
owned_metrics_dir: str | None = None
if not settings.metrics_dir:
    owned_metrics_dir = os.environ[METRICS_DIR_ENV] = tempfile.mkdtemp(prefix="relay-prometheus-")

wsgi_app = "relay.web:create_app()"
bind = settings.bind
workers = settings.workers
# gthread whose event loop reads each request whole before a thread takes it (slow clients).
worker_class = "relay.runtime.prereader.PrereadingWorker"
threads = settings.threads
timeout = settings.timeout_s
graceful_timeout = settings.graceful_timeout_s
keepalive = 5
forwarded_allow_ips = settings.forwarded_allow_ips
# The relay logs one JSON line per request itself; RELAY_ACCESS_LOG=1 adds gunicorn's, as JSON too.
accesslog = "-" if settings.access_log else None
logconfig_dict = logging_config(settings.log_level, access_log=settings.access_log)
# Skips building gunicorn's access line while its logger is silenced.
logger_class = "relay.logs.GunicornLogger"
# The relay is driven by signals only; a shared default control socket path would
# collide between two relays on one host.
control_socket_disable = True


def on_starting(server: Any) -> None:
    """Empty the metrics directory, then migrate once, before workers race to do it."""
    from relay.metrics_dir import wipe_multiprocess_dir

    wipe_multiprocess_dir(os.environ[METRICS_DIR_ENV])
    # In a child: the master then never loads the outbox's code or SQLite, and holds ~3 MiB
    # less for as long as it runs. The master has no threads yet, so forking here is safe.
    child = os.fork()
    if child == 0:
        code = 1
        try:
            code = _migrate(server)
        except BaseException:
            server.log.exception("migrating the outbox at start failed")
        finally:
            logging.shutdown()  # os._exit skips it: lines still batched would be lost
            os._exit(code)
    _, status = os.waitpid(child, 0)
    if os.waitstatus_to_exitcode(status) not in (0, OUTBOX_UNAVAILABLE):
        server.log.error("migrating the outbox at start failed; workers will retry")


OUTBOX_UNAVAILABLE = 3  # the migrating child's exit status when it said so in the log itself


def _migrate(server: Any) -> int:
    """0 once the outbox is migrated, OUTBOX_UNAVAILABLE when it is not (said in the log)."""
    from relay.errors import StoreUnavailable
    from relay.store import open_store

    try:
        open_store(settings.database_url, synchronous=settings.sqlite_synchronous).close()
    except StoreUnavailable as exc:
        server.log.error("outbox unavailable at start, workers will retry: %s", exc)
        return OUTBOX_UNAVAILABLE
    return 0


def post_worker_init(worker: Any) -> None:
    """Start this worker's dispatcher, mapping watcher and SIGTERM drain.

    Not post_fork: gunicorn loads the app after post_fork, and the dispatcher
    needs the app's outbox (opened after the fork, never shared across it).
    """
    from relay.runtime.worker import start_worker

    start_worker(worker)


def worker_exit(server: Any, worker: Any) -> None:
    """Stop claiming and give back leads not yet sent, so another worker takes them."""
    from relay.runtime.worker import stop_worker

    stop_worker(worker, timeout_s=max(1.0, float(server.cfg.graceful_timeout) / 2))


def child_exit(server: Any, worker: Any) -> None:
    from relay.metrics_dir import mark_worker_dead

    mark_worker_dead(worker.pid, os.environ[METRICS_DIR_ENV])


def on_exit(server: Any) -> None:
    """Every worker is gone: fold SQLite's write-ahead log in, so relay.db alone is the whole outbox."""
    from relay.store import open_store

    try:
        open_store(settings.database_url, synchronous=settings.sqlite_synchronous, migrate=False).close()
    except Exception as exc:  # stopping anyway: say why the file may still need its -wal
        server.log.warning("outbox not checkpointed at exit: %s", exc)
    if owned_metrics_dir:
        shutil.rmtree(owned_metrics_dir, ignore_errors=True)
