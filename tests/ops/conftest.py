"""Fixtures for the operability surface: an app over a real SQLite outbox and small fake sources."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import pytest

from relay.config import Settings
from relay.mapping.model import InboundSettings, TokenAuth
from relay.store import open_store
from relay.web import create_app
from relay.web.registry import SourceRegistry
from tests.web.web_fakes import ENV, FakeDispatcher, FakeSource

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
OUTSIDE = {"REMOTE_ADDR": "203.0.113.9"}  # a peer that is not on this host


@pytest.fixture
def store(tmp_path: Path):
    outbox = open_store(f"sqlite:///{tmp_path / 'relay.db'}", synchronous="NORMAL")
    yield outbox
    outbox.close()


@pytest.fixture
def make_app(store) -> Callable[..., Any]:
    def build(*sources: FakeSource, env: Mapping[str, str] | None = None, problems: tuple = (),
              outbox: Any = None) -> Any:
        settings = Settings(env=dict(ENV if env is None else env), delivery_enabled=False)
        registry = SourceRegistry({source.name: source for source in sources}, problems)
        app = create_app(settings, store=outbox or store, dispatcher=FakeDispatcher(), registry=registry)
        app.config["TESTING"] = True
        return app
    return build


@pytest.fixture
def acme() -> FakeSource:
    return FakeSource("acme")


@pytest.fixture
def guarded() -> FakeSource:
    """A source that needs a token in the X-Token header."""
    return FakeSource("guarded", inbound=InboundSettings(token=TokenAuth(("ACME_TOKEN",), header="X-Token")))


@pytest.fixture
def app(make_app, acme: FakeSource, guarded: FakeSource):
    return make_app(acme, guarded)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def token_app(make_app, acme: FakeSource):
    return make_app(acme, env={**ENV, "RELAY_ADMIN_TOKEN": ADMIN_TOKEN})
