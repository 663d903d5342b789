"""Fixtures for the operability surface: an app over a real SQLite outbox and small fake sources."""
from __future__ import annotations

import pytest

from relay.mapping.model import InboundSettings, TokenAuth
from tests.web.conftest import acme, dispatcher, make_app, store  # noqa: F401 (shared fixtures)
from tests.web.web_fakes import ENV, FakeSource

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
OUTSIDE = {"REMOTE_ADDR": "203.0.113.9"}  # a peer that is not on this host


@pytest.fixture
def guarded() -> FakeSource:
    """A source that needs a token in the X-Token header."""
    return FakeSource("guarded", inbound=InboundSettings(token=TokenAuth(("ACME_TOKEN",), header="X-Token")))


@pytest.fixture
def app(make_app, acme: FakeSource, guarded: FakeSource):
    return make_app(acme, guarded, env={**ENV, "RELAY_ADMIN_TOKEN": ADMIN_TOKEN})


@pytest.fixture
def client(app):
    """A client that presents the admin token on every request (a test may override the header)."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ADMIN_TOKEN}"
    return client


@pytest.fixture
def anonymous(app):
    return app.test_client()


@pytest.fixture
def token_app(make_app, acme: FakeSource):
    return make_app(acme, env={**ENV, "RELAY_ADMIN_TOKEN": ADMIN_TOKEN})
