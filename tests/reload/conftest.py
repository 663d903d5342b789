"""Fixtures shared with the web tests: an app over a real SQLite outbox with fake sources."""
from tests.web.conftest import acme, dispatcher, make_app, store  # noqa: F401
