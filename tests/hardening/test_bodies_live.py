"""Cut-off, oversized and non-finite bodies against a real gunicorn relay, over raw sockets."""
from __future__ import annotations

import json
import socket
from typing import Iterator

import pytest
import requests

from relay.store import open_store
from tests.support.stack import SHIPPED_MAPPINGS, Stack

SMALL = ('version: 1\ntrackdrive: {lead_token: "${GENERIC_JSON_LEAD_TOKEN}"}\n'
         "lead: {caller_id: $.phone}\ninbound: {max_body: 1KiB}\n")
BUFFER = 4096  # bytes the worker reads ahead; the larger bodies below reach the application unread


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("bodies")
    (workdir / "mappings").mkdir()
    (workdir / "mappings" / "generic-json.yaml").write_text((SHIPPED_MAPPINGS / "generic-json.yaml").read_text())
    (workdir / "mappings" / "small.yaml").write_text(SMALL)
    running = Stack(workdir, env_overrides={"RELAY_REQUEST_BUFFER": str(BUFFER)}).start()
    yield running
    running.stop()


def raw_post(stack: Stack, path: str, declared: int, body: bytes, *, half_close: bool) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
            f"X-Api-Key: example-key\r\nConnection: close\r\nContent-Length: {declared}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", stack.relay_port), timeout=30) as sock:
        sock.sendall(head + body)
        if half_close:
            sock.shutdown(socket.SHUT_WR)  # the client hangs up its side
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def status_and_error(answer: bytes) -> tuple[int, dict]:
    return status_of(answer), json.loads(answer.partition(b"\r\n\r\n")[2])["error"]


def lead_count(stack: Stack) -> int:
    store = open_store(stack.database_url)
    try:
        return sum(count.count for count in store.counts())
    finally:
        store.close()


def lead_body(size: int) -> bytes:
    """A whole lead, then spaces up to ``size``: any cut still parses, so only the length can tell."""
    text = json.dumps({"lead_id": f"cut-{size}", "contact": {"phone": "+15122010009"}}).encode()
    return text + b" " * (size - len(text))


@pytest.mark.parametrize("declared", [200, 3 * BUFFER], ids=["read-ahead", "streamed"])
def test_a_cut_off_body_is_400_and_nothing_is_stored(stack: Stack, declared: int) -> None:
    before = lead_count(stack)
    whole = lead_body(declared)
    answer = raw_post(stack, "/hooks/generic-json", declared, whole.rstrip(), half_close=True)
    status, error = status_and_error(answer)
    assert status == 400, answer
    assert error["code"] == "malformed_body"
    assert lead_count(stack) == before
    # The same body sent whole is a lead: the cut, not the content, was refused.
    assert status_of(raw_post(stack, "/hooks/generic-json", declared, whole, half_close=False)) == 202


def test_a_413_reaches_a_client_that_writes_its_whole_body_first(stack: Stack) -> None:
    body = b"x" * (8 * 1024 * 1024)  # more than the kernel buffers hold
    answer = raw_post(stack, "/hooks/small", len(body), body, half_close=False)
    status, error = status_and_error(answer)
    assert status == 413 and error["code"] == "payload_too_large"


def test_non_finite_numbers_are_refused_with_their_position(stack: Stack) -> None:
    before = lead_count(stack)
    body = b'{"contact": {"phone": "+15122010010"},\n"n": 1e999}'
    answer = requests.post(f"{stack.url}/hooks/generic-json", data=body,
                           headers={"Content-Type": "application/json", "X-Api-Key": "example-key"}, timeout=10)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "malformed_body" and (error["line"], error["column"]) == (2, 6)
    assert "1e999" in error["message"]
    assert lead_count(stack) == before
