"""Fixtures for the web service: an app over a real SQLite outbox with small fake sources.

Fake sources stand in for loaded mapping files so each rule of the hooks endpoint
can be tested alone; ``test_web_real_*`` files run the real mapping loader and gunicorn.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import pytest

from relay.intake.registry import SourceRegistry
from relay.settings import Settings
from relay.store import open_store
from relay.web import create_app
from tests.web.web_fakes import ENV, FakeDispatcher, FakeSource


@pytest.fixture
def store(tmp_path: Path):
    outbox = open_store(f"sqlite:///{tmp_path / 'relay.db'}", synchronous="NORMAL")
    yield outbox
    outbox.close()


@pytest.fixture
def dispatcher() -> FakeDispatcher:
    return FakeDispatcher()


@pytest.fixture
def make_app(store, dispatcher: FakeDispatcher) -> Callable[..., Any]:
    def build(*sources: FakeSource, env: Mapping[str, str] | None = None, problems: tuple = (),
              trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1"), outbox: Any = None,
              delivery: Any = None) -> Any:
        settings = Settings(env=dict(ENV if env is None else env), trusted_proxies=trusted_proxies,
                            delivery_enabled=False)
        registry = SourceRegistry({source.name: source for source in sources}, problems)
        app = create_app(settings, store=outbox or store, dispatcher=delivery or dispatcher,
                         registry=registry)
        app.config["TESTING"] = True
        return app
    return build


@pytest.fixture
def acme() -> FakeSource:
    return FakeSource("acme")


@pytest.fixture
def app(make_app, acme: FakeSource):
    return make_app(acme)


@pytest.fixture
def client(app):
    return app.test_client()
