"""Slow clients through real gunicorn: 100 sockets trickling a request never stop the relay."""
from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from relay.runtime.prereader import chunked_complete, request_state, strip_expect
from tests.support.stack import Stack

SLOW_SOCKETS = 100
TRICKLE_S = 20.0
READ_DEADLINE_S = 25  # longer than the trickle: the pre-reader, not the deadline, keeps the relay free
HEADERS = {"Content-Type": "application/json", "X-Api-Key": "example-key"}
BODY = b'{"lead_id": "slow-1", "contact": {"phone": "+15122010001"}}'


def slow_request(index: int) -> bytes:
    """Half trickle their headers, half a body that declares more than it has sent."""
    head = (f"POST /hooks/generic-json HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
            f"X-Api-Key: example-key\r\nContent-Length: {len(BODY)}\r\n\r\n").encode()
    return head + BODY if index % 2 else head[:20] + head[20:] + BODY


def open_slow(port: int, index: int) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    request = slow_request(index)
    start = 10 if index % 2 == 0 else request.index(b"\r\n\r\n") + 4  # headers: a few bytes; body: all headers
    sock.sendall(request[:start])
    return sock, request[start:]


def post_normal(url: str, i: int) -> int:
    lead = {"lead_id": f"normal-{i}", "contact": {"phone": f"+1512202{i:04d}"}}
    return requests.post(f"{url}/hooks/generic-json", json=lead, headers=HEADERS, timeout=15).status_code


def test_slow_sockets_do_not_stop_normal_requests(tmp_path: Path) -> None:
    stack = Stack(tmp_path, env_overrides={"RELAY_REQUEST_READ_TIMEOUT": str(READ_DEADLINE_S)}).start()
    slow: list[tuple[socket.socket, bytes]] = []
    try:
        slow = [open_slow(stack.relay_port, i) for i in range(SLOW_SOCKETS)]
        answered: list[int] = []
        with ThreadPoolExecutor(4) as pool:
            started = time.monotonic()
            sent = 0
            while time.monotonic() - started < TRICKLE_S:
                for sock, rest in slow:
                    if sent < len(rest) - 1:  # one byte a round, never the last: they stay incomplete
                        sock.send(rest[sent:sent + 1])
                sent += 1
                answered += pool.map(lambda i: post_normal(stack.url, i), range(len(answered), len(answered) + 8))
                assert requests.get(f"{stack.url}/healthz", timeout=15).status_code == 200
                time.sleep(0.5)
        assert answered and set(answered) == {202}, answered
        # Past the read deadline, an incomplete request is answered 408 with the JSON error body.
        sock = slow[0][0]
        sock.settimeout(READ_DEADLINE_S + 10)
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b'"code": "request_timeout"' in answer
    finally:
        for sock, _ in slow:
            sock.close()
        stack.stop()


def test_request_state_reads_lengths_chunks_and_expect() -> None:
    head = b"POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
    assert request_state(head[:10], 1024) == "more"
    assert request_state(head + b"abc", 1024) == "more"
    assert request_state(head + b"abcde", 1024) == "ready"
    assert request_state(head + b"abc", 2) == "ready"  # past the buffer: the application streams it
    assert request_state(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1024) == "ready"
    assert request_state(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 1024) == "ready"
    expect = b"POST /h HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    assert request_state(expect, 1024) == "continue"
    assert b"Expect" not in strip_expect(expect)
    assert not chunked_complete(b"3\r\nabc\r\n")
    assert chunked_complete(b"3\r\nabc\r\n0\r\n\r\n")
    assert chunked_complete(b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n")
    assert chunked_complete(b"zz\r\n")  # malformed: the parser answers it
