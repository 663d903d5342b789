"""Console fixtures: an app over a real SQLite outbox with the admin and read-only tokens set."""
from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.conftest import acme, dispatcher, make_app, store  # noqa: F401 (shared fixtures)
from tests.web.web_fakes import ENV

ADMIN_TOKEN = "console-admin-token-0123456789"
READONLY_TOKEN = "console-readonly-token-9876543210"
TOKENS = {**ENV, "RELAY_ADMIN_TOKEN": ADMIN_TOKEN, "RELAY_ADMIN_READONLY_TOKEN": READONLY_TOKEN}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def log_in(client: Any, token: str = ADMIN_TOKEN, name: str = "dana") -> Any:
    page = client.get("/admin/login")
    response = client.post("/admin/login", data={"token": token, "name": name,
                                                  "csrf_token": csrf_of(page.get_data(as_text=True))})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


@pytest.fixture
def app(make_app, acme):
    return make_app(acme, env=TOKENS)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def admin(client):
    log_in(client)
    return client
