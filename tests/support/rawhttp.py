"""Reading one HTTP/1.1 request off a raw socket, for stand-ins that script their answers byte by byte."""
from __future__ import annotations

import socket
import threading
from typing import Callable


def read_request(sock: socket.socket) -> bytes | None:
    """The next request on ``sock`` (head and body), or None once the client has closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def header(request: bytes, name: str) -> str | None:
    """The value of header ``name`` in a request read by :func:`read_request`."""
    head = request.partition(b"\r\n\r\n")[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def serve_connections(listener: socket.socket, talk: Callable[[socket.socket], None]) -> None:
    """Run ``talk`` on a thread of its own for each connection ``listener`` accepts, until it is closed."""
    def accept_all() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=talk, args=(sock,), daemon=True).start()

    threading.Thread(target=accept_all, daemon=True).start()
