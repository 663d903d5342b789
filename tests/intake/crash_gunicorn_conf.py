"""The relay's own gunicorn settings, plus one defect planted in the source named ``crashy``.

A mapping crash cannot be provoked through a valid mapping file (templates and
transforms turn their own failures into refusals), so the live test plants one
in each worker, after the app loaded, the way a future defect would appear.
"""
from __future__ import annotations

from typing import Any

from relay.runtime.gunicorn_conf import *  # noqa: F403
from relay.runtime.gunicorn_conf import post_worker_init as relay_post_worker_init


def post_worker_init(worker: Any) -> None:
    from relay.mapping.source import Source

    original = Source.map_payload

    def map_payload(self: Source, payload: Any) -> Any:
        if self.name == "crashy":
            raise ZeroDivisionError("planted defect")
        return original(self, payload)

    Source.map_payload = map_payload  # type: ignore[method-assign]
    relay_post_worker_init(worker)
