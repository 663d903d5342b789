"""The relay's web service: ``create_app()`` builds one Flask app per process.

The app holds the loaded sources, the outbox and (once relay.runtime starts
delivery in a gunicorn worker) the dispatcher. A vendor is answered only after
its request is committed to the outbox; the way a request becomes leads lives
in relay.intake, the process wiring in relay.runtime.
"""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask

from relay.errors import StoreUnavailable
from relay.intake.ratelimit import RateLimiter, default_limit
from relay.intake.registry import SourceRegistry
from relay.intake.watcher import register_all_secrets
from relay.settings import Settings
from relay.store import open_store
from relay.store.base import Store
from relay.web import admin, health, hooks, openapi
from relay.web.console import init_console
from relay.web.error_handlers import register_error_handlers
from relay.web.observe import init_observe
from relay.web.request_id import init_request_id
from relay.web.state import EXTENSION, RelayState, relay_state

__all__ = ["create_app", "relay_state"]

log = logging.getLogger("relay.web")


def create_app(settings: Settings | None = None, *, store: Store | None = None,
               dispatcher: object = None, registry: SourceRegistry | None = None) -> Flask:
    settings = settings or Settings.from_env()
    if registry is None:
        if not Path(settings.mappings_dir).is_dir():
            log.warning("mappings directory %s does not exist: every source answers 404",
                        settings.mappings_dir)
        registry = SourceRegistry.load(settings.mappings_dir, last_good_dir=settings.last_good_path)
    report_mapping_state(registry, settings)
    register_all_secrets(registry, settings.env)
    if store is None:
        store = open_outbox(settings)

    app = Flask(__name__)
    app.extensions[EXTENSION] = RelayState(settings=settings, registry=registry, store=store,
                                           limiter=RateLimiter(default=default_limit(settings.rate_limit_per_s)),
                                           dispatcher=dispatcher)
    init_request_id(app)
    init_observe(app)
    register_error_handlers(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(hooks.bp)
    app.register_blueprint(openapi.bp)
    init_console(app)
    return app


def report_mapping_state(registry: SourceRegistry, settings: Settings) -> None:
    for problem in registry.problems:
        log.error("mapping problem: %s", problem)
    for name, missing in registry.missing_env(settings.env).items():
        log.warning("source %s answers 503 until these are set: %s", name, ", ".join(missing))


def open_outbox(settings: Settings) -> Store:
    store = open_store(settings.database_url, synchronous=settings.sqlite_synchronous,
                       commit_delay_s=settings.sqlite_commit_delay_ms / 1000, migrate=False)
    try:
        store.migrate()
    except StoreUnavailable as exc:
        # A worker must boot even while the store is down (disk full, database restarting):
        # it answers 503 until writes succeed again, instead of taking the whole server down.
        log.error("outbox unavailable at start: %s", exc)
    return store
