"""A Trackdrive that first answers every lead with bytes no Trackdrive would send, through a real gunicorn.

Each such answer must end its own call (retried like a connection error), never a worker's
sender: every lead still reaches the stand-in's good answer, once.
"""
from __future__ import annotations

import itertools
import socket
import threading
from pathlib import Path

import pytest
import requests

from tests.support.rawhttp import header, read_request, serve_connections
from tests.support.stack import Stack, wait_until

LEADS = 12
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
HOSTILE = [
    CHUNKED + b"-1\r\nxx\r\n0\r\n\r\n",  # once made the parser wait forever for zero bytes
    CHUNKED + b"0x2\r\n{}\r\n0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n" * 20 + b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}",
    CHUNKED + b"1\r\nx\r\n" * 2000 + b"0\r\n\r\n",
]
GOOD = b'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"status":"ok"}'


class HostileTrackdrive:
    """Answers a lead's first call with the next hostile answer (then closes), later calls with 201."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.tried: set[str] = set()
        self.accepted: list[str] = []
        self._hostile = itertools.cycle(HOSTILE)
        self._lock = threading.Lock()
        serve_connections(self.listener, self._talk)

    def _talk(self, sock: socket.socket) -> None:
        try:
            while (request := read_request(sock)) is not None:
                lead_id = header(request, "Idempotency-Key") or ""
                with self._lock:
                    first = lead_id not in self.tried
                    self.tried.add(lead_id)
                    if not first:
                        self.accepted.append(lead_id)
                    answer = next(self._hostile) if first else GOOD
                sock.sendall(answer)
                if first:
                    return
        except OSError:
            return
        finally:
            sock.close()

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("evented", ["1", "0"], ids=["evented", "a-thread-per-call"])
def test_hostile_answers_end_their_own_calls_and_every_lead_is_delivered(tmp_path: Path, evented: str) -> None:
    trackdrive = HostileTrackdrive()
    stack = Stack(tmp_path, env_overrides={"TRACKDRIVE_BASE_URL": trackdrive.url, "RELAY_DELIVERY_EVENTED": evented,
                                           "RELAY_RETRY_DELAYS": "0.2,0.2,0.2"}).start()
    try:
        lead_ids = stack.post_leads(f"hostile-{evented}", LEADS)
        assert wait_until(lambda: len(trackdrive.accepted) >= LEADS)
        assert sorted(trackdrive.accepted) == sorted(lead_ids)
        assert requests.get(f"{stack.url}/readyz", timeout=10).status_code == 200
    finally:
        stack.stop()
        trackdrive.close()
