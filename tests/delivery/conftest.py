from __future__ import annotations

from typing import Iterator

import pytest

from relay.sandbox import Behaviour, create_sandbox_app, serve_in_thread
from relay.sandbox.server import RunningSandbox


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    running = serve_in_thread(create_sandbox_app(Behaviour(seed=7)))
    yield running
    running.close()
