from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from relay.sandbox import Behaviour, create_sandbox_app


@pytest.fixture
def app() -> Flask:
    return create_sandbox_app(Behaviour(seed=1))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
