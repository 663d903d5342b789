"""Helpers for tests against a real gunicorn: a steady stream of requests, recorded in order."""
from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import requests

from tests.reload.mappings_fixture import ENV, V1
from tests.support.stack import Stack, wait_until

ADMIN_ENV = {"RELAY_DRAIN_SECONDS": "1", "RELAY_BREAKER_FAILURES": "3", "RELAY_BREAKER_COOLDOWN": "1"}
PHONE = {"phone": "(512) 555-0147"}

_order = itertools.count()


def next_seq() -> int:
    return next(_order)


def start_stack(workdir, files: dict[str, str] | None = None, *, workers: int = 3,
                layout: Callable[[Any], None] | None = None, **env: str) -> Stack:
    stack = Stack(workdir=workdir, workers=workers, env_overrides={**ENV, **ADMIN_ENV, **env})
    stack.mappings_dir.mkdir(parents=True)
    if layout is not None:
        layout(stack.mappings_dir)
    for name, text in (files if files is not None else {"acme.yaml": V1}).items():
        (stack.mappings_dir / name).write_text(text, encoding="utf-8")
    stack.start()
    # gunicorn boots workers one after another: wait for all, so each has read the files above.
    assert wait_until(lambda: stack.relay.log().count("mapping_watch_started") >= workers), stack.logs()
    return stack


def post(url: str, payload: dict[str, Any]) -> requests.Response:
    # No session: a new connection each time, so the kernel spreads requests over the workers.
    return requests.post(url, json=payload, timeout=30, headers={"Connection": "close"})


def all_answer(url: str, payload: dict[str, Any], status: int, count: int = 24) -> bool:
    return all(post(url, payload).status_code == status for _ in range(count))


@dataclass
class Stream:
    """Posts one lead after another from a thread until stopped; keeps every answer in order."""

    url: str
    payload: dict[str, Any]
    answers: list[tuple[int, int | None, dict[str, Any] | str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Stream:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(60)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                response = post(self.url, self.payload)
                self.answers.append((next_seq(), response.status_code, response.json()))
            except (requests.RequestException, ValueError) as exc:
                self.answers.append((next_seq(), None, type(exc).__name__))

    def statuses(self) -> set[int | None]:
        return {status for _, status, _ in self.answers}

    def accepted_ids(self) -> list[str]:
        return [body["lead_id"] for _, status, body in self.answers
                if status is not None and 200 <= status < 300 and isinstance(body, dict)]
