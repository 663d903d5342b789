"""relay.delivery.wire against real sockets: how answers are framed, kept, refused and secured."""
from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Iterator

import pytest

from relay.delivery.sender import CONNECT_THREADS, MAX_ANSWER_BYTES, Exchange, Finished, Sender
from relay.delivery.wire import (
    MAX_BODY_BYTES,
    MAX_CHUNKS,
    MAX_INTERIM_ANSWERS,
    Answer,
    Connections,
    Incomplete,
    Origin,
    WireError,
    encode_request,
    parse_answer,
    split_url,
)
from tests.support.rawhttp import read_request, serve_connections

HEADERS = {"Accept": "application/json", "Idempotency-Key": "L1"}  # as the relay sends every call


class RawServer:
    """Answers each request with the next scripted bytes; ``None`` closes without answering.

    After each answer the connection stays open for the next request unless ``close_after``.
    """

    def __init__(self, answers: list[bytes | None], *, close_after: bool = False,
                 tls: ssl.SSLContext | None = None) -> None:
        self.answers = list(answers)
        self.close_after = close_after
        self.tls = tls
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        serve_connections(self.listener, self._talk)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _talk(self, sock: socket.socket) -> None:
        self.connections += 1
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            while self.answers:
                request = read_request(sock)
                if request is None:
                    return
                self.requests.append(request)
                answer = self.answers.pop(0)
                if answer is None:
                    return
                sock.sendall(answer)
                if self.close_after:
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            sock.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def serve() -> Iterator:
    servers: list[RawServer] = []

    def start(*answers: bytes | None, **options: object) -> RawServer:
        server = RawServer(list(answers), **options)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


class Way:
    """One call through the blocking client (``Connections.request``) or the evented sender."""

    def __init__(self, evented: bool) -> None:
        self.evented = evented
        self.senders: dict[int, Sender] = {}

    def __call__(self, connections: Connections, url: str, body: bytes | None = b'{"a": 1}',
                 method: str = "POST", read_timeout_s: float = 10.0, path: str = "/api/v1/leads?lead_token=t",
                 headers: dict[str, str] | None = None, connect_timeout_s: float = 5.0) -> Answer:
        headers = HEADERS if headers is None else headers
        if not self.evented:
            return connections.request(method, url + path, body=body, headers=headers,
                                       connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s)
        request = encode_request(method, url + path, body=body, headers=headers)
        done: Future[Answer | WireError] = Future()
        self._sender(connections).submit(Exchange(request, connect_timeout_s, read_timeout_s, tag=done))
        result = done.result(timeout=30)
        if isinstance(result, WireError):
            raise result
        return result

    def _sender(self, connections: Connections) -> Sender:
        if id(connections) not in self.senders:
            def finished(batch: Finished) -> None:
                for exchange, result in batch:
                    exchange.tag.set_result(result)
            self.senders[id(connections)] = sender = Sender(connections, finished)
            sender.start()
        return self.senders[id(connections)]

    def close(self) -> None:
        for sender in self.senders.values():
            sender.stop(5)


@pytest.fixture(params=["blocking", "evented"])
def call(request: pytest.FixtureRequest) -> Iterator[Way]:
    way = Way(evented=request.param == "evented")
    yield way
    way.close()


OK = b'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{"ok": true}'


def test_a_content_length_answer_and_the_request_it_answers(call, serve) -> None:
    server = serve(b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\nX-Twice: a\r\nx-twice: b\r\n\r\nbody")
    answer = call(Connections(), server.url)
    assert (answer.status, answer.body, answer.headers["x-twice"]) == (201, b"body", "a, b")
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /api/v1/leads?lead_token=t HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}".encode() in lines
    assert b"Content-Length: 8" in lines and body == b'{"a": 1}'


def test_a_chunked_answer_with_extensions_and_trailers(call, serve) -> None:
    server = serve(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"4;name=x\r\nWiki\r\n6\r\npedia \r\n0\r\nTrailer: y\r\n\r\n", OK)
    connections = Connections()
    assert call(connections, server.url).body == b"Wikipedia "
    assert call(connections, server.url).status == 201
    assert server.connections == 1  # the chunked answer ended cleanly: the connection was kept


def test_an_answer_that_ends_with_the_connection(call, serve) -> None:
    server = serve(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", OK, close_after=True)
    connections = Connections()
    assert call(connections, server.url).body == b"until the end"
    assert call(connections, server.url).status == 201
    assert server.connections == 2


@pytest.mark.parametrize("head", [b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                                  b"HTTP/1.0 201 Created\r\nContent-Length: 0\r\n\r\n"])
def test_a_connection_the_answer_closes_is_not_kept(call, serve, head: bytes) -> None:
    server = serve(head, OK, close_after=True)
    connections = Connections()
    assert call(connections, server.url).status == 201
    assert call(connections, server.url).status == 201
    assert server.connections == 2


def test_an_interim_answer_is_skipped(call, serve) -> None:
    server = serve(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
    assert call(Connections(), server.url).status == 201


def test_a_kept_connection_closed_while_idle_is_replaced(call, serve) -> None:
    server = serve(OK, OK, close_after=True)  # closes after each answer without saying so
    connections = Connections()
    assert call(connections, server.url).status == 201
    assert call(connections, server.url).status == 201  # not an error: it saw the close and reconnected
    assert server.connections == 2


@pytest.mark.parametrize(("headers", "replayed"), [({"Idempotency-Key": "L1"}, True), ({}, False)])
def test_a_kept_connection_that_drops_the_request_unanswered(call, serve, headers: dict[str, str],
                                                             replayed: bool) -> None:
    server = serve(OK, None, OK)  # the second request finds the kept connection closing
    connections = Connections()
    assert call(connections, server.url).status == 201
    if replayed:  # sent again at once on a new connection, as Go's net/http does with such a key
        answer = call(connections, server.url, body=b"{}", path="/", headers=headers)
        assert (answer.status, server.connections, len(server.requests)) == (201, 2, 3)
    else:
        with pytest.raises(WireError) as raised:
            call(connections, server.url, body=b"{}", path="/", headers=headers)
        assert raised.value.kind == "protocol"
        assert len(server.requests) == 2


def test_a_large_body_is_cut_and_the_connection_still_kept(call, serve) -> None:
    size = MAX_BODY_BYTES + 1000
    server = serve(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size, OK)
    connections = Connections()
    assert len(call(connections, server.url).body) == MAX_BODY_BYTES
    assert call(connections, server.url).status == 201
    assert server.connections == 1


@pytest.mark.parametrize("answer", [b"garbage\r\n\r\n", b"HTTP/1.1 2x1 Created\r\n\r\n",
                                    b"HTTP/1.1 201 Created\r\nno colon here\r\n\r\n",
                                    b"HTTP/1.1 201 Created\r\nContent-Length: -1\r\n\r\n",
                                    b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\nshort", None])
def test_a_broken_or_missing_answer_is_a_protocol_error(call, serve, answer: bytes | None) -> None:
    server = serve(answer, close_after=True)
    with pytest.raises(WireError) as raised:
        call(Connections(), server.url)
    assert raised.value.kind == "protocol"
    assert "lead_token" not in str(raised.value)


def test_a_silent_server_is_a_timeout(call, serve) -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) and never answers
    try:
        with pytest.raises(WireError) as raised:
            call(Connections(), f"http://127.0.0.1:{listener.getsockname()[1]}", read_timeout_s=0.2)
        assert raised.value.kind == "timeout"
    finally:
        listener.close()


def test_nothing_listening_is_a_connect_error(call) -> None:
    with pytest.raises(WireError) as raised:
        call(Connections(), "http://127.0.0.1:9")
    assert (raised.value.kind, raised.value.where) == ("connect", "http://127.0.0.1:9")


@pytest.mark.parametrize("url", ["ftp://example.com/x", "http://", "http://example.com:99999/", "not a url"])
def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(WireError) as raised:
        split_url(url)
    assert raised.value.kind == "invalid_url"


def test_targets_are_escaped_once_and_hosts_named_as_http_wants() -> None:
    origin, target = split_url("http://[::1]:8080/api/v1/leads/+1 555/opt?x=a+b%26c#frag")
    assert (origin.host_header, target) == ("[::1]:8080", "/api/v1/leads/+1%20555/opt?x=a+b%26c")
    assert split_url("https://example.com/")[0].host_header == "example.com"


def test_a_header_that_would_split_the_request_is_refused(call, serve) -> None:
    server = serve(OK)
    with pytest.raises(WireError) as raised:
        call(Connections(), server.url, body=None, path="/", headers={"X-Lead": "a\r\nInjected: 1"})
    assert raised.value.kind == "invalid_header"
    assert server.requests == []


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_https_checks_the_certificate(call, serve, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    server = serve(OK, OK, tls=server_side)
    trusting = Connections(tls=ssl.create_default_context(cafile=str(cert)))
    assert call(trusting, server.url).status == 201
    with pytest.raises(WireError) as raised:
        call(Connections(), server.url)  # the system's authorities do not know this certificate
    assert raised.value.kind == "connect"


def test_the_sender_answers_what_is_ready_while_another_call_waits(serve) -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) and never answers
    server = serve(*[OK] * 20)
    finished: dict[str, str] = {}
    fast_done, held_done = threading.Event(), threading.Event()

    def record(batch: Finished) -> None:
        for exchange, result in batch:
            finished[exchange.tag] = "answered" if isinstance(result, Answer) else result.kind
        if len(finished) - ("held" in finished) == 20:
            fast_done.set()
        if "held" in finished:
            held_done.set()

    sender = Sender(Connections(), record)
    sender.start()
    try:
        silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        sender.submit(Exchange(encode_request("POST", silent_url, body=b"{}", headers=HEADERS), 5, 600,
                               tag="held"))
        for n in range(20):
            sender.submit(Exchange(encode_request("POST", server.url + "/", body=b"{}", headers=HEADERS), 5, 10,
                                   tag=f"fast{n}"))
        assert fast_done.wait(30)
        assert "held" not in finished  # still waiting for its answer while the other twenty got theirs
        silent.close()  # resets the connection it never accepted: the held call ends now
        assert held_done.wait(30)
    finally:
        sender.stop(5)
        silent.close()
    assert finished.pop("held") == "protocol"
    assert finished == {f"fast{n}": "answered" for n in range(20)}


def test_the_sender_refuses_an_answer_too_large_to_be_trackdrives(serve) -> None:
    # The blocking client reads such an answer through and drops the rest; the sender holds
    # an answer whole while it arrives, so it stops at a bound.
    size = MAX_ANSWER_BYTES + 1
    server = serve(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size)
    evented = Way(evented=True)
    try:
        with pytest.raises(WireError) as raised:
            evented(Connections(), server.url)
    finally:
        evented.close()
    assert raised.value.kind == "protocol"


class BrokenOnce(Connections):
    """Connections whose first take() hits a defect."""

    broken = True

    def take(self, origin):  # type: ignore[no-untyped-def]
        if self.broken:
            self.broken = False
            raise RuntimeError("a defect in one call")
        return super().take(origin)


def test_a_defect_in_one_call_ends_that_call_and_not_the_loop(serve, caplog: pytest.LogCaptureFixture) -> None:
    server = serve(OK)
    evented = Way(evented=True)
    connections = BrokenOnce()
    try:
        with pytest.raises(WireError) as raised:
            evented(connections, server.url)
        assert raised.value.kind == "protocol"
        assert evented(connections, server.url).status == 201
    finally:
        evented.close()
    assert "failed unexpectedly in the sender" in caplog.text


ANSWERS = [
    (OK, 201, b'{"ok": true}', True),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n6\r\npedia \r\n0\r\nT: 1\r\n\r\n",
     200, b"Wikipedia ", True),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}", 202, b"{}", True),
    (b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 201, b"", False),
]


@pytest.mark.parametrize(("data", "status", "body", "reusable"), ANSWERS)
def test_an_answer_read_piece_by_piece_is_the_answer_read_whole(data: bytes, status: int, body: bytes,
                                                                 reusable: bool) -> None:
    # The sender parses what has arrived so far after every read: every shorter prefix must
    # ask for more, never parse as a different answer.
    for cut in range(len(data)):
        with pytest.raises(Incomplete):
            parse_answer(data[:cut], ended=False, head_only=False)
    answer, keeps = parse_answer(data, ended=False, head_only=False)
    assert (answer.status, answer.body, keeps) == (status, body, reusable)


def test_an_answer_framed_by_the_end_of_the_connection_waits_for_it() -> None:
    data = b"HTTP/1.1 200 OK\r\n\r\nuntil the end"
    with pytest.raises(Incomplete):
        parse_answer(data, ended=False, head_only=False)
    answer, keeps = parse_answer(data, ended=True, head_only=False)
    assert (answer.body, keeps) == (b"until the end", False)
    with pytest.raises(ConnectionResetError):  # closed before its Content-Length was all there
        parse_answer(OK[:-3], ended=True, head_only=False)


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
HOSTILE = {
    "negative chunk size": CHUNKED + b"-1\r\nxx\r\n0\r\n\r\n",
    "0x chunk size": CHUNKED + b"0x2\r\n{}\r\n0\r\n\r\n",
    "underscored chunk size": CHUNKED + b"1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n",
    "too many interim answers": b"HTTP/1.1 100 Continue\r\n\r\n" * (MAX_INTERIM_ANSWERS + 1) + OK,
    "too many chunks": CHUNKED + b"1\r\nx\r\n" * (MAX_CHUNKS + 1) + b"0\r\n\r\n",
}


@pytest.mark.parametrize("answer", HOSTILE.values(), ids=HOSTILE.keys())
def test_an_answer_no_trackdrive_would_send_ends_its_call_and_no_other(call, serve, answer: bytes) -> None:
    # A negative chunk size once left the parser reading zero bytes forever: the sender's one
    # loop, and every call of its worker after it, hung.
    server = serve(answer, OK)
    connections = Connections()
    with pytest.raises(WireError) as raised:
        call(connections, server.url)
    assert raised.value.kind == "protocol"
    assert call(connections, server.url).status == 201


def test_the_interim_answers_allowed_are_skipped(call, serve) -> None:
    server = serve(b"HTTP/1.1 100 Continue\r\n\r\n" * MAX_INTERIM_ANSWERS + OK)
    assert call(Connections(), server.url).status == 201


class Trickler:
    """Answers the first request with a head, then one body byte every ``every_s``, then closes."""

    def __init__(self, every_s: float, pieces: int) -> None:
        self.every_s, self.pieces = every_s, pieces
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        sock, _ = self.listener.accept()
        try:
            read_request(sock)
            sock.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 100000\r\n\r\n")
            for _ in range(self.pieces):
                time.sleep(self.every_s)
                sock.sendall(b"x")
        except OSError:
            pass
        finally:
            sock.close()
            self.listener.close()


def test_an_answer_trickled_byte_by_byte_ends_at_the_connect_and_read_timeouts(call) -> None:
    # Each byte comes well within the read timeout, so only the cap on the whole call (connect +
    # read timeout) ends it, as a timeout. Without the cap the call would last until the server
    # gives up and closes, and end as a protocol error: the lead would outlive its lease and be
    # sent again while this call was still open.
    server = Trickler(every_s=0.05, pieces=200)
    with pytest.raises(WireError) as raised:
        call(Connections(), server.url, connect_timeout_s=0.2, read_timeout_s=0.5)
    assert raised.value.kind == "timeout"


def test_a_host_name_that_cannot_be_encoded_is_a_connect_error(call) -> None:
    with pytest.raises(WireError) as raised:  # an IDNA label over 63 characters
        call(Connections(), "http://" + "a" * 64 + ".example.com")
    assert raised.value.kind == "connect"


@pytest.mark.parametrize(("path", "headers", "kind"), [
    ("/api/v1/leads/\ud800", HEADERS, "invalid_url"),
    ("/api/v1/leads", {"Idempotency-Key": "\ud800"}, "invalid_header"),
])
def test_a_call_that_cannot_be_encoded_is_refused(path: str, headers: dict[str, str], kind: str) -> None:
    with pytest.raises(WireError) as raised:
        encode_request("POST", "https://td.example.com" + path, body=b"{}", headers=headers)
    assert raised.value.kind == kind


def test_a_connection_is_kept_past_descriptor_1024(call, serve) -> None:
    server = serve(OK, OK)
    read_end, write_end = os.pipe()
    filler = [read_end, write_end]
    try:
        while max(filler) < 1100:  # a busy worker's sockets reach descriptor numbers past 1024
            filler.append(os.dup(read_end))
        connections = Connections()
        assert call(connections, server.url).status == 201
        assert call(connections, server.url).status == 201
    finally:
        for fd in filler:
            os.close(fd)
    assert server.connections == 1


def test_parsing_again_waits_for_the_bytes_a_body_still_needs() -> None:
    head = b"HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n"
    with pytest.raises(Incomplete) as raised:
        parse_answer(head + b"x" * 10, ended=False, head_only=False)
    assert raised.value.needed == len(head) + 100


class SlowConnects(Connections):
    """Every new connection takes a while, as a TLS handshake far away does."""

    def connect(self, origin: Origin, timeout_s: float):  # type: ignore[no-untyped-def]
        time.sleep(0.3)
        return super().connect(origin, timeout_s)


def test_a_stop_lets_connects_still_queued_send_their_calls(serve) -> None:
    # Stopping once cancelled the connects still queued behind the connector threads: their
    # calls, never sent, waited out their deadlines and were recorded as failed attempts.
    calls = CONNECT_THREADS * 2
    server = serve(*[OK] * calls, close_after=True)
    finished: list[Answer | WireError] = []
    sender = Sender(SlowConnects(), lambda batch: finished.extend(result for _, result in batch))
    sender.start()
    request = encode_request("POST", server.url + "/api/v1/leads", body=b"{}", headers=HEADERS)
    for number in range(calls):
        sender.submit(Exchange(request, 5, 10, tag=number))
    sender.stop(0.1)  # gives up waiting while connects are still queued; the loop goes on
    for _ in range(3000):
        if len(finished) == calls:
            break
        time.sleep(0.01)
    assert [getattr(result, "status", result) for result in finished] == [201] * calls


def test_a_sender_that_has_stopped_refuses_a_call(serve) -> None:
    sender = Sender(Connections(), lambda batch: None)
    sender.start()
    sender.stop(5)
    request = encode_request("POST", "http://127.0.0.1:9/api/v1/leads", body=b"{}", headers=HEADERS)
    with pytest.raises(RuntimeError):
        sender.submit(Exchange(request, 5, 10, tag=None))
