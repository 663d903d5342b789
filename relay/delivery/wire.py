"""A small HTTP/1.1 client for the Trackdrive hot path: kept-alive connections, one exchange each.

Every new lead is one Trackdrive call, so the client's own CPU is paid per lead. urllib3
(which requests is built on, and which this path used before) spends more on a fast
Trackdrive than the exchange itself: its connection and response layers, and http.client
reading each answer's headers through the stdlib e-mail parser. A Trackdrive call needs
little of HTTP: one request whose body has a Content-Length, and an answer framed by
Content-Length, chunks or the end of the connection. No redirects (an answer is an
outcome), no retries (the outbox retries, recording each attempt), no proxies, no cookies.
``bench/client_cost.py`` measures this client beside urllib3 and requests.

Errors are :class:`WireError` values with a kind and the host only: a URL's query holds
the lead token.
"""
from __future__ import annotations

import contextlib
import re
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import quote, urlsplit

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024  # kept of an answer; the rest is read and dropped
RECV_BYTES = 64 * 1024
# Past these an answer is not one Trackdrive would send: each bounds the work a hostile one costs.
MAX_INTERIM_ANSWERS = 8  # 100 Continue, 103 Early Hints before the real answer
MAX_CHUNKS = 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
# What a request target may hold unescaped: RFC 3986's reserved and unreserved characters,
# and % so that what is escaped already stays as it is.
TARGET_SAFE = "/?#[]@!$&'()*+,;=:%-._~"
DEFAULT_PORTS = {"http": 80, "https": 443}


class WireError(Exception):
    """A call that got no answer.

    ``kind``: invalid_url, invalid_header, connect, connect_timeout, timeout or protocol.
    """

    def __init__(self, kind: str, where: str) -> None:
        super().__init__(f"{kind} ({where})")
        self.kind = kind
        self.where = where


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # names in lower case; repeated headers joined with ", "
    body: bytes


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def where(self) -> str:
        return f"{self.scheme}://{self.host_header}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"


class Connections:
    """Idle connections kept per origin (up to ``max_idle`` each), shared by threads."""

    def __init__(self, *, max_idle: int = 32, tls: ssl.SSLContext | None = None) -> None:
        self.max_idle = max_idle
        self.tls = tls if tls is not None else ssl.create_default_context()
        self._idle: dict[Origin, list[Connection]] = {}
        self._lock = threading.Lock()

    def request(self, method: str, url: str, *, body: bytes | None, headers: Mapping[str, str],
                connect_timeout_s: float, read_timeout_s: float) -> Answer:
        """Trackdrive's answer; WireError when there is none.

        The read timeout runs from the request and again from each piece of the answer, and the
        whole call ends ``connect_timeout_s + read_timeout_s`` after it began at the latest: an
        answer trickled a byte at a time must not hold the lead past its lease.
        """
        gives_up_at = time.monotonic() + connect_timeout_s + read_timeout_s
        request = encode_request(method, url, body=body, headers=headers)
        kept = self.take(request.origin)
        if kept is not None:
            try:
                return self._exchange(kept, request, read_timeout_s, gives_up_at)
            except _Unanswered:
                if not request.replayable:
                    raise WireError("protocol", request.origin.where) from None
                # Trackdrive closed the kept connection as it was reused, before any answer:
                # sent again at once on a new one, as the outbox's retry would send it later.
        try:
            connection = self.connect(request.origin, connect_timeout_s)
            return self._exchange(connection, request, read_timeout_s, gives_up_at)
        except _Unanswered:
            raise WireError("protocol", request.origin.where) from None

    def _exchange(self, connection: Connection, request: Request, read_timeout_s: float,
                  gives_up_at: float) -> Answer:
        origin = request.origin
        connection.answered = False
        try:
            connection.arm(read_timeout_s, gives_up_at)
            connection.sock.sendall(request.payload)
            answer, reusable = connection.read_answer(head_only=request.head_only)
        except TimeoutError:
            connection.close()
            raise WireError("timeout", origin.where) from None
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            connection.close()
            if not connection.answered and isinstance(exc, OSError):
                raise _Unanswered from exc
            raise WireError("protocol", origin.where) from exc
        if reusable:
            self.keep(origin, connection)
        else:
            connection.close()
        return answer

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def take(self, origin: Origin) -> Connection | None:
        """An idle kept connection to ``origin`` that is still open, or None."""
        while True:
            with self._lock:
                kept = self._idle.get(origin)
                connection = kept.pop() if kept else None
            if connection is None or connection.still_open():
                return connection
            connection.close()  # Trackdrive closed it while it sat idle

    def keep(self, origin: Origin, connection: Connection) -> None:
        """Keep a connection whose exchange ended cleanly for the next call (or close it)."""
        with self._lock:
            kept = self._idle.setdefault(origin, [])
            if len(kept) < self.max_idle:
                kept.append(connection)
                return
        connection.close()

    def connect(self, origin: Origin, timeout_s: float) -> Connection:
        """A new connection (TLS for https), blocking up to ``timeout_s``; WireError otherwise."""
        try:
            sock = socket.create_connection((origin.host, origin.port), timeout=timeout_s)
        except TimeoutError:
            raise WireError("connect_timeout", origin.where) from None
        except (OSError, ValueError) as exc:  # ValueError: a host name IDNA cannot encode
            raise WireError("connect", origin.where) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if origin.scheme == "https":
                sock = self.tls.wrap_socket(sock, server_hostname=origin.host)
        except TimeoutError:
            sock.close()
            raise WireError("connect_timeout", origin.where) from None
        except (OSError, ValueError) as exc:  # a failed handshake or certificate check
            sock.close()
            raise WireError("connect", origin.where) from exc
        return Connection(sock)


def split_url(url: str) -> tuple[Origin, str]:
    """The origin to connect to and the request target; WireError("invalid_url") otherwise."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or DEFAULT_PORTS[scheme]
        host = parts.hostname
    except (KeyError, ValueError):
        raise WireError("invalid_url", where_of(url)) from None
    if not host:
        raise WireError("invalid_url", where_of(url))
    try:
        target = quote(parts.path or "/", safe=TARGET_SAFE)
        if parts.query:
            target += "?" + quote(parts.query, safe=TARGET_SAFE)
    except UnicodeError:  # a lone surrogate in a stored call
        raise WireError("invalid_url", where_of(url)) from None
    return Origin(scheme, host, port), target


@dataclass(frozen=True)
class Request:
    """One call as it goes on the wire, with what its exchange needs to know."""

    origin: Origin
    payload: bytes
    head_only: bool  # the answer has no body to read
    replayable: bool  # may be sent again when a reused connection fails before any answer


def encode_request(method: str, url: str, *, body: bytes | None, headers: Mapping[str, str]) -> Request:
    """The request's bytes; WireError("invalid_url" or "invalid_header") when it cannot be sent."""
    origin, target = split_url(url)
    payload = _request_head(method, target, origin, headers, len(body) if body is not None else None)
    return Request(origin, payload + (body or b""), method == "HEAD", _replayable(method, headers))


def where_of(url: str) -> str:
    """Scheme and host only: the query holds the lead_token and the path may hold a caller_id."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "an unparsable URL"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{netloc}" if parts.scheme else "a URL without a scheme"


def _request_head(method: str, target: str, origin: Origin, headers: Mapping[str, str],
                  length: int | None) -> bytes:
    if any(ch in part for part in (method, *headers.keys(), *headers.values()) for ch in "\r\n\0"):
        raise WireError("invalid_header", origin.where)  # would split the request
    lines = [f"{method} {target} HTTP/1.1", f"Host: {origin.host_header}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if length is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {length or 0}")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    except UnicodeError:
        raise WireError("invalid_header", origin.where) from None


class _Unanswered(Exception):
    """The connection failed before a byte of the answer came back."""


def _replayable(method: str, headers: Mapping[str, str]) -> bool:
    # As Go's net/http decides: a request that carries an idempotency key may be sent twice.
    return method in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE") or any(
        name.lower() in ("idempotency-key", "x-idempotency-key") for name in headers)


class Incomplete(Exception):
    """The answer is not all there yet: parsing again is worth it once ``needed`` bytes are in."""

    def __init__(self, needed: int) -> None:
        super().__init__(f"incomplete: {needed} bytes needed")
        self.needed = needed


class _Reader:
    """Reads one answer out of ``buffer``, asking :meth:`_more` for bytes whenever it runs short."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.answered = False  # a byte of the answer to the request in flight has arrived
        self.short = 1  # bytes still missing when the next read was asked for

    def _more(self) -> bytes:
        """The next bytes of the connection; empty once it has ended."""
        raise NotImplementedError

    def read_answer(self, *, head_only: bool) -> tuple[Answer, bool]:
        """The answer, and whether the connection can carry another request."""
        for _ in range(MAX_INTERIM_ANSWERS + 1):
            version, status, headers = self._read_head()
            if not 100 <= status < 200:
                break  # an interim answer (100 Continue, 103 Early Hints) is followed by the real one
        else:
            raise ValueError("too many interim answers")
        reusable = _keeps_alive(version, headers.get("connection", ""))
        if head_only or status in (204, 304):
            return Answer(status, headers, b""), reusable
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return Answer(status, headers, self._read_chunked()), reusable
        length = headers.get("content-length")
        if length is None:
            return Answer(status, headers, self._read_to_end()), False
        if not length.isdigit():
            raise ValueError("invalid Content-Length")
        return Answer(status, headers, self._read_exactly(int(length))), reusable

    def _read_head(self) -> tuple[str, int, dict[str, str]]:
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        status_line, *lines = head.split("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise ValueError("not an HTTP/1 answer")
        headers: dict[str, str] = {}
        for line in lines:
            name, colon, value = line.partition(":")
            if not colon:
                raise ValueError("malformed answer header")
            key, value = name.strip().lower(), value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return version, int(code), headers

    def _receive(self) -> None:
        chunk = self._more()
        if not chunk:
            raise ConnectionResetError("closed before the answer ended")
        self.answered = True
        self.buffer += chunk

    def _read_exactly(self, length: int) -> bytes:
        kept = bytearray()
        while length:
            if not self.buffer:
                self.short = length
                self._receive()
            piece = self.buffer[:length]
            del self.buffer[:len(piece)]
            length -= len(piece)
            if len(kept) < MAX_BODY_BYTES:
                kept += piece[:MAX_BODY_BYTES - len(kept)]
        return bytes(kept)

    def _read_line(self) -> bytes:
        return self._read_until(b"\r\n")

    def _read_until(self, delimiter: bytes) -> bytes:
        """What comes before ``delimiter``; both are taken off the buffer."""
        end = self.buffer.find(delimiter)
        while end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise ValueError("answer headers or a chunk line too long")
            self.short = 1
            self._receive()
            end = self.buffer.find(delimiter)
        text = bytes(self.buffer[:end])
        del self.buffer[:end + len(delimiter)]
        return text

    def _read_chunked(self) -> bytes:
        kept = bytearray()
        for _ in range(MAX_CHUNKS):
            size_text = self._read_line().split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise ValueError("invalid chunk size")
            size = int(size_text, 16)
            if size == 0:
                while self._read_line():  # trailers, up to the empty line
                    pass
                return bytes(kept)
            piece = self._read_exactly(size)
            if len(kept) < MAX_BODY_BYTES:
                kept += piece[:MAX_BODY_BYTES - len(kept)]
            if self._read_line():
                raise ValueError("chunk not followed by CRLF")
        raise ValueError("too many chunks")

    def _read_to_end(self) -> bytes:
        kept = bytearray(self.buffer[:MAX_BODY_BYTES])
        self.buffer.clear()
        while chunk := self._more():
            if len(kept) < MAX_BODY_BYTES:
                kept += chunk[:MAX_BODY_BYTES - len(kept)]
        return bytes(kept)


class Connection(_Reader):
    """A socket to one origin, read with blocking calls (the sender reads it without them)."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.read_timeout_s: float | None = None  # set by arm() for each blocking exchange
        self.gives_up_at = float("inf")

    def arm(self, read_timeout_s: float, gives_up_at: float) -> None:
        """Blocking reads from here on: each waits up to ``read_timeout_s``, none past ``gives_up_at``."""
        self.read_timeout_s, self.gives_up_at = read_timeout_s, gives_up_at
        self._set_timeout()

    def _set_timeout(self) -> None:
        left = self.gives_up_at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the call outlived its connect and read timeouts")
        self.sock.settimeout(min(self.read_timeout_s or left, left))

    def _more(self) -> bytes:
        if self.read_timeout_s is not None:
            self._set_timeout()
        return self.sock.recv(RECV_BYTES)

    def still_open(self) -> bool:
        """A kept connection Trackdrive has not closed: nothing to read on it yet."""
        if self.buffer:
            return False
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return False
        # poll, not select: select refuses descriptors past 1024, which a busy worker reaches.
        poller = select.poll()
        try:
            poller.register(self.sock, select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class _Received(_Reader):
    """What has arrived so far, read as if it were the whole connection."""

    def __init__(self, data: bytes, ended: bool) -> None:
        super().__init__()
        self.buffer += data
        self.answered = bool(data)
        self._ended = ended
        self._size = len(data)

    def _more(self) -> bytes:
        if self._ended:
            return b""
        raise Incomplete(self._size + self.short)


def parse_answer(data: bytes, *, ended: bool, head_only: bool) -> tuple[Answer, bool]:
    """The answer in ``data`` and whether the connection can carry another request.

    Raises Incomplete while more bytes are needed (``ended``: the connection has closed; its
    ``needed``: how many bytes ``data`` must hold before parsing it again can get further),
    ValueError for an answer that is not HTTP/1, ConnectionResetError when it closed mid-answer.
    """
    received = _Received(data, ended)
    answer, reusable = received.read_answer(head_only=head_only)
    return answer, reusable and not received.buffer and not ended


def _keeps_alive(version: str, connection: str) -> bool:
    tokens = {token.strip().lower() for token in connection.split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens
