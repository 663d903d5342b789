"""One thread per worker that drives every Trackdrive call in flight: one selector, no blocking.

With a thread per call, each call's socket write, its wait for the answer and its settle each
handed the GIL to another of the worker's dozens of threads, and those hand-overs cost more CPU
than the calls (see docs/performance.md, "The evented sender"). Here one loop writes each
request on a kept-alive connection, waits for every answer at once with the selector, parses
what arrives, and hands the finished calls of each turn of the loop to ``on_finished`` together,
so whatever records them (the dispatcher's settle) pays one hand-over for a batch.

Connecting blocks (DNS, TCP, the TLS handshake), so new connections are opened by a few
helper threads and handed back to the loop; with Trackdrive keeping connections alive that
happens once per connection, not once per call. A kept connection that fails before any byte
of its answer is replayed once on a new one when the call may be sent twice (as
:class:`relay.delivery.wire.Connections` does). Timeouts follow the blocking client: the read
timeout runs from the request and again from each piece of the answer, and the whole call ends
its connect and read timeouts after it began at the latest, so an answer trickled a byte at a
time never holds a lead past its lease.
"""
from __future__ import annotations

import contextlib
import logging
import os
import selectors
import ssl
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

from relay.delivery.wire import (
    MAX_BODY_BYTES,
    MAX_HEAD_BYTES,
    RECV_BYTES,
    Answer,
    Connection,
    Connections,
    Incomplete,
    Request,
    WireError,
    parse_answer,
)

log = logging.getLogger("relay.delivery")

# An answer is parsed again from its start as pieces arrive; past this it is not a Trackdrive answer.
MAX_ANSWER_BYTES = MAX_HEAD_BYTES + 2 * MAX_BODY_BYTES
CONNECT_THREADS = 4
_BLOCKED = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


@dataclass(eq=False)
class Exchange:
    """One call: what to send, for how long to wait, and ``tag`` (the caller's, handed back)."""

    request: Request
    connect_timeout_s: float
    read_timeout_s: float
    tag: Any
    connection: Connection | None = field(default=None, repr=False)
    sent: int = 0
    deadline: float = 0.0
    gives_up_at: float = float("inf")  # set when the call begins; no piece of the answer moves it
    needed: int = 0  # bytes the answer must hold before parsing it again can get further
    reused: bool = False  # on a kept connection: a failure before any answer may be replayed
    replayed: bool = False
    done: bool = False  # handed to on_finished (or about to be): never twice


Finished = list[tuple[Exchange, Answer | WireError]]


class Sender:
    """Sends :class:`Exchange` values; ``on_finished`` gets each turn's finished ones, in the loop."""

    def __init__(self, connections: Connections, on_finished: Callable[[Finished], None], *,
                 name: str = "relay-sender") -> None:
        self.connections = connections
        self.on_finished = on_finished
        self.name = name
        self._lock = threading.Lock()
        self._inbox: deque[tuple[Callable[[], None], Exchange | None]] = deque()
        self._woken = False
        self._in_flight: set[Exchange] = set()
        self._finished: Finished = []
        self._selector: selectors.BaseSelector | None = None
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None
        self._connector: ThreadPoolExecutor | None = None
        self._stopping = threading.Event()

    # --- from any thread ---

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            if not self._stopping.is_set():
                return
            self._thread.join()  # a loop still finishing calls from before its stop (read timeouts bound it)
        self._stopping.clear()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._connector = ThreadPoolExecutor(CONNECT_THREADS, thread_name_prefix=f"{self.name}-connect")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        """The loop is running (after a stop: until the calls it still had in flight are done)."""
        return self._thread is not None and self._thread.is_alive()

    def submit(self, exchange: Exchange) -> None:
        """Queue the call; RuntimeError once the loop has ended (the call was not made)."""
        if not self._post(lambda: self._begin(exchange), exchange):
            raise RuntimeError("the Trackdrive sender is not running")

    def stop(self, timeout_s: float) -> None:
        """Finish what is in flight (up to ``timeout_s``), then end the loop."""
        self._stopping.set()
        self._post(lambda: None, None)
        if self._thread is not None:
            self._thread.join(max(0.0, timeout_s))
        if self._connector is not None:
            # Connects already queued still run: each is bounded by its connect timeout, and
            # its call, once connected, is sent and settled like any other in flight.
            self._connector.shutdown(wait=False)

    def _post(self, work: Callable[[], None], exchange: Exchange | None) -> bool:
        """Queue ``work`` for the loop; False once the loop has ended (nothing will run it)."""
        with self._lock:
            if self._wake_w < 0:
                return False
            self._inbox.append((work, exchange))
            wake, self._woken = not self._woken, True
            if wake:
                with contextlib.suppress(OSError):  # a full pipe wakes the loop already
                    os.write(self._wake_w, b"x")
        return True

    # --- the loop ---

    def _run(self) -> None:
        assert self._selector is not None
        try:
            while not (self._stopping.is_set() and not self._in_flight and not self._inbox):
                try:
                    self._turn(self._selector)
                except Exception:  # the loop must outlive any one call's trouble
                    log.exception("the Trackdrive sender's loop hit an unexpected error")
        finally:
            self._close()

    def _turn(self, selector: selectors.BaseSelector) -> None:
        for key, events in selector.select(self._wait_s()):
            if key.data is None:
                self._drain_wake()
            else:
                self._guarded(partial(self._on_ready, key.data, events), key.data)
        with self._lock:
            work, self._inbox = self._inbox, deque()
            self._woken = False
        for item, exchange in work:
            self._guarded(item, exchange)
        self._expire(time.monotonic())
        self._hand_finished()

    def _hand_finished(self) -> None:
        if self._finished:
            finished, self._finished = self._finished, []
            try:
                self.on_finished(finished)
            except Exception:
                log.exception("recording finished Trackdrive calls failed")

    def _guarded(self, work: Callable[[], None], exchange: Exchange | None) -> None:
        """Run one step; a defect ends that call with an error instead of losing it or the loop."""
        try:
            work()
        except Exception:
            log.exception("a Trackdrive call failed unexpectedly in the sender")
            if exchange is not None and not exchange.done:
                self._release(exchange, keep=False)
                self._finish(exchange, WireError("protocol", exchange.request.origin.where))

    def _wait_s(self) -> float | None:
        if self._inbox:
            return 0.0
        if not self._in_flight:
            return None
        nearest = min(exchange.deadline for exchange in self._in_flight)
        return max(0.0, nearest - time.monotonic())

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _begin(self, exchange: Exchange) -> None:
        if exchange.done:  # ended unsent as the loop stopped
            return
        self._in_flight.add(exchange)
        exchange.gives_up_at = time.monotonic() + exchange.connect_timeout_s + exchange.read_timeout_s
        connection = self.connections.take(exchange.request.origin)
        if connection is None:
            self._connect(exchange)
            return
        exchange.reused = True
        self._send(exchange, connection)

    def _connect(self, exchange: Exchange) -> None:
        exchange.reused = False
        exchange.deadline = exchange.gives_up_at
        assert self._connector is not None

        def connect() -> None:
            connection: Connection | WireError
            try:
                connection = self.connections.connect(exchange.request.origin, exchange.connect_timeout_s)
            except WireError as exc:
                connection = exc
            except Exception:  # the loop must hear of every connect, or the call waits out its deadline
                log.exception("connecting to Trackdrive failed unexpectedly")
                connection = WireError("connect", exchange.request.origin.where)
            posted = self._post(lambda: self._connected(exchange, connection), exchange)
            if not posted and isinstance(connection, Connection):
                connection.close()  # the loop ended meanwhile: nothing will use or close it

        try:
            self._connector.submit(connect)
        except RuntimeError:  # shut down while stopping
            self._finish(exchange, WireError("connect", exchange.request.origin.where))

    def _connected(self, exchange: Exchange, connection: Connection | WireError) -> None:
        if exchange.done:  # timed out meanwhile
            if isinstance(connection, Connection):
                connection.close()
            return
        if isinstance(connection, WireError):
            self._finish(exchange, connection)
            return
        self._send(exchange, connection)

    def _send(self, exchange: Exchange, connection: Connection) -> None:
        assert self._selector is not None
        exchange.connection = connection
        exchange.sent = 0
        connection.buffer.clear()
        connection.answered = False
        connection.sock.setblocking(False)
        exchange.needed = 0
        exchange.deadline = min(time.monotonic() + exchange.read_timeout_s, exchange.gives_up_at)
        try:
            self._selector.register(connection.sock, selectors.EVENT_WRITE, exchange)
        except (OSError, ValueError):
            self._failed(exchange, unanswered=True)
            return
        self._write(exchange)

    def _on_ready(self, exchange: Exchange, events: int) -> None:
        if exchange not in self._in_flight:
            return
        request = exchange.request
        if exchange.sent < len(request.payload) and events & selectors.EVENT_WRITE:
            self._write(exchange)
        elif events & selectors.EVENT_READ:
            self._read(exchange)

    def _write(self, exchange: Exchange) -> None:
        connection, payload = exchange.connection, exchange.request.payload
        assert connection is not None and self._selector is not None
        try:
            while exchange.sent < len(payload):
                exchange.sent += connection.sock.send(payload[exchange.sent:])
        except _BLOCKED:
            return
        except OSError:
            self._failed(exchange, unanswered=True)
            return
        self._selector.modify(connection.sock, selectors.EVENT_READ, exchange)

    def _read(self, exchange: Exchange) -> None:
        connection = exchange.connection
        assert connection is not None
        ended = False
        arrived = 0
        try:
            while True:
                chunk = connection.sock.recv(RECV_BYTES)
                if not chunk:
                    ended = True
                    break
                connection.answered = True
                connection.buffer += chunk
                arrived += len(chunk)
                if len(connection.buffer) > MAX_ANSWER_BYTES:
                    self._failed(exchange, unanswered=False)
                    return
                if len(chunk) < RECV_BYTES and not _has_pending(connection):
                    break
        except _BLOCKED:
            pass
        except OSError:
            self._failed(exchange, unanswered=not connection.answered)
            return
        if arrived:  # a wake-up that brought no bytes (a TLS record of its own) is no progress
            exchange.deadline = min(time.monotonic() + exchange.read_timeout_s, exchange.gives_up_at)
        if not ended and len(connection.buffer) < exchange.needed:
            return  # parsing again from the start would stop where it stopped before
        try:
            answer, reusable = parse_answer(bytes(connection.buffer), ended=ended,
                                            head_only=exchange.request.head_only)
        except Incomplete as short:
            exchange.needed = short.needed
            return
        except ConnectionResetError:
            self._failed(exchange, unanswered=not connection.answered)
            return
        except ValueError:
            self._failed(exchange, unanswered=False)
            return
        self._release(exchange, keep=reusable)
        self._finish(exchange, answer)

    def _expire(self, now: float) -> None:
        for exchange in [e for e in self._in_flight if e.deadline <= now]:
            # Still connecting: the helper's connection, if it ever comes, is closed on arrival.
            kind = "connect_timeout" if exchange.connection is None else "timeout"
            self._release(exchange, keep=False)
            self._finish(exchange, WireError(kind, exchange.request.origin.where))

    def _failed(self, exchange: Exchange, *, unanswered: bool) -> None:
        self._release(exchange, keep=False)
        if unanswered and exchange.reused and exchange.request.replayable and not exchange.replayed:
            # Trackdrive closed the kept connection as it was reused: once more on a new one.
            exchange.replayed = True
            self._connect(exchange)
            return
        self._finish(exchange, WireError("protocol", exchange.request.origin.where))

    def _release(self, exchange: Exchange, *, keep: bool) -> None:
        connection, exchange.connection = exchange.connection, None
        if connection is None:
            return
        assert self._selector is not None
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(connection.sock)
        if keep:
            connection.buffer.clear()
            self.connections.keep(exchange.request.origin, connection)
        else:
            connection.close()

    def _finish(self, exchange: Exchange, result: Answer | WireError) -> None:
        self._in_flight.discard(exchange)
        if not exchange.done:
            exchange.done = True
            self._finished.append((exchange, result))

    def _close(self) -> None:
        for exchange in list(self._in_flight):
            self._release(exchange, keep=False)
        if self._selector is not None:
            self._selector.close()
        with self._lock:  # a late _post must not write to a descriptor number reused since
            fds, self._wake_r, self._wake_w = (self._wake_r, self._wake_w), -1, -1
            late, self._inbox = self._inbox, deque()
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._refuse(late)

    def _refuse(self, late: deque[tuple[Callable[[], None], Exchange | None]]) -> None:
        """Work posted just as the loop ended: its calls end unsent, and a connection that
        arrived for one is closed (``_begin`` and ``_connected`` do only that for an ended call)."""
        for work, exchange in late:
            if exchange is not None and not exchange.done:
                self._finish(exchange, WireError("connect", exchange.request.origin.where))
            with contextlib.suppress(Exception):
                work()
        self._hand_finished()


def _has_pending(connection: Connection) -> bool:
    sock = connection.sock
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
