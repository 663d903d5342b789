from __future__ import annotations

from typing import Iterator

import pytest

from tests.support.stack import Stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The shipped mappings served by a real gunicorn, delivering to the real sandbox."""
    running = Stack(tmp_path_factory.mktemp("stack")).start()
    yield running
    running.stop()
