"""A gthread worker that reads each whole request before a thread takes it.

gunicorn's gthread worker hands a connection to one of its pool threads as soon as the
first byte arrives; the thread then blocks reading headers and body. A few dozen clients
trickling a byte a second would hold every thread while requests that arrived whole wait.

Here the worker's event loop (one thread, non-blocking sockets, the selector gunicorn
already runs) gathers the request line, headers and body up to ``buffer_bytes`` first,
and hands the connection to the pool only when it holds the whole request. A request not
complete within ``deadline_s`` is answered 408 and closed. The gunicorn master imports
this module to find the worker class, so it imports nothing of the relay but settings.
"""
from __future__ import annotations

import contextlib
import errno
import json
import selectors
import socket
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import TConn, ThreadWorker

from relay.settings import Settings

RECV_BYTES = 64 * 1024
HEADER_LIMIT_BYTES = 64 * 1024  # past this the parser refuses the headers anyway
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass
class Pending:
    """A connection whose request is still arriving."""

    conn: TConn
    deadline: float
    received: bytearray = field(default_factory=bytearray)
    continued: bool = False  # a 100 Continue went out for this request


class PrereadingWorker(ThreadWorker):
    """gthread, with requests read whole by the event loop (see the module doc)."""

    def init_process(self) -> None:
        settings = Settings.from_env()
        self.deadline_s = settings.request_read_timeout_s
        self.buffer_bytes = settings.request_buffer_bytes
        self.pending: dict[TConn, Pending] = {}
        super().init_process()

    # --- where connections come in ---

    def accept(self, listener: socket.socket) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.ECONNABORTED:  # the client left before we took it
                return
            raise
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())  # non-blocking now
        if self.cfg.is_ssl or negotiation.prior_knowledge_allowed(self.cfg, client_addr):
            self.enqueue_req(conn)  # TLS and HTTP/2 framing are gunicorn's to read
            return
        self._gather(conn)

    def on_client_socket_readable(self, conn: TConn, client: Any) -> None:
        """A kept-alive connection starts its next request: gather that one too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        if conn.is_http2 or self.cfg.is_ssl:
            self.enqueue_req(conn)
            return
        self._gather(conn)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for pending in [p for p in self.pending.values() if p.deadline <= now]:
            self._time_out(pending)

    # --- gathering ---

    def _gather(self, conn: TConn) -> None:
        conn.sock.setblocking(False)
        pending = Pending(conn, time.monotonic() + self.deadline_s)
        self.pending[conn] = pending
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, pending))

    def _on_readable(self, pending: Pending, sock: socket.socket) -> None:
        try:
            data = sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client stopped sending before its request was whole
            self._forget(pending)
            self.nr_conns -= 1
            if pending.received:  # a half-closed client still reads: tell it the request was cut off
                _send_quietly(sock, error_response(400, "Bad Request", "malformed_body",
                                                   "the request ended before its declared length"))
            pending.conn.close()
            return
        pending.received += data
        state = request_state(bytes(pending.received), self.buffer_bytes)
        if state == "continue" and not pending.continued:
            pending.continued = True
            _send_quietly(sock, CONTINUE)
            pending.received = bytearray(strip_expect(bytes(pending.received)))
            state = request_state(bytes(pending.received), self.buffer_bytes)
        if state == "ready":
            self._hand_over(pending)

    def _hand_over(self, pending: Pending) -> None:
        self._forget(pending)
        conn = pending.conn
        conn.data_ready = True
        conn.init()
        conn.parser.unreader.unread(bytes(pending.received))
        self.enqueue_req(conn)

    def _time_out(self, pending: Pending) -> None:
        self._forget(pending)
        self.nr_conns -= 1
        message = f"the request did not arrive whole within {self.deadline_s:g} seconds"
        _send_quietly(pending.conn.sock, error_response(408, "Request Timeout", "request_timeout", message,
                                                        limit_s=self.deadline_s))
        pending.conn.close()

    def _forget(self, pending: Pending) -> None:
        self.pending.pop(pending.conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(pending.conn.sock)


def request_state(data: bytes, buffer_bytes: int) -> str:
    """``ready`` to hand over, ``more`` to keep reading, ``continue`` when the client awaits 100 Continue.

    Anything the parser will refuse (headers too long, a bad length or chunk size) is
    ``ready`` too: the parser answers it at once, no thread waits on it.
    """
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return "ready" if len(data) > HEADER_LIMIT_BYTES else "more"
    headers = _headers(data[:head_end])
    body = data[head_end + 4:]
    if len(body) >= buffer_bytes:
        return "ready"  # the application refuses or streams a body this large itself
    if "chunked" in headers.get("transfer-encoding", "").lower():
        complete = chunked_complete(body)
    else:
        try:
            complete = len(body) >= int(headers.get("content-length", "0"))
        except ValueError:
            return "ready"
    if complete:
        return "ready"
    return "continue" if headers.get("expect", "").lower() == "100-continue" else "more"


def chunked_complete(body: bytes) -> bool:
    """Whether a chunked body has arrived up to its last chunk and trailers (or is malformed)."""
    position = 0
    while True:
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            return False
        try:
            size = int(body[position:line_end].split(b";", 1)[0].strip(), 16)
        except ValueError:
            return True
        position = line_end + 2
        if size == 0:
            return body.startswith(b"\r\n", position) or body.find(b"\r\n\r\n", position - 2) >= 0
        position += size + 2
        if position > len(body):
            return False


def strip_expect(data: bytes) -> bytes:
    """The request without its ``Expect`` header, once its 100 Continue has been sent here."""
    head_end = data.find(b"\r\n\r\n")
    lines = data[:head_end].split(b"\r\n")
    kept = [line for line in lines if not line.lower().startswith(b"expect:")]
    return b"\r\n".join(kept) + data[head_end:]


def _headers(head: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return headers


def error_response(status: int, reason: str, code: str, message: str, **details: object) -> bytes:
    """The relay's one JSON error body, written by the worker before any application sees the request."""
    body = json.dumps({"error": {"code": code, "message": message, **details}}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the client is gone or not reading: closing is all that is left
        sock.send(data)
