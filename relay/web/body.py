"""Read a request body with a hard per-source limit, enforced while reading."""
from __future__ import annotations

from typing import IO

from werkzeug.exceptions import ClientDisconnected

from relay.errors import MalformedBody, PayloadTooLarge

CHUNK_BYTES = 64 * 1024
# Read and thrown away before a 413: a client that writes its whole body before reading
# sees a connection reset instead of the answer if unread bytes are left on the socket.
DRAIN_BYTES = 16 * 1024 * 1024


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body exceeds the limit of {limit} bytes", limit=limit)


def check_declared_length(content_length: int | None, limit: int, stream: IO[bytes] | None = None) -> None:
    if content_length is not None and content_length > limit:
        if stream is not None:
            drain(stream)
        raise too_large(limit)


def drain(stream: IO[bytes], budget: int = DRAIN_BYTES) -> None:
    """Read what the client is still sending, up to ``budget`` bytes, so it can read the answer."""
    try:
        while budget > 0:
            chunk = stream.read(min(CHUNK_BYTES, budget))
            if not chunk:
                return
            budget -= len(chunk)
    except (ClientDisconnected, OSError):
        return


def read_limited(stream: IO[bytes], limit: int, declared_length: int | None = None) -> bytes:
    """Read at most ``limit`` bytes; one byte more means the body is too large.

    Chunked uploads declare no length, so the stream itself is the only place
    the limit can be enforced. A body shorter than its ``Content-Length`` was cut
    off (under gunicorn the stream just ends), and a part of a lead is no lead.
    """
    chunks: list[bytes] = []
    received = 0
    try:
        while received <= limit:
            chunk = stream.read(min(CHUNK_BYTES, limit + 1 - received))
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
    except ClientDisconnected as exc:
        raise MalformedBody("the request body ended before its declared Content-Length",
                            content_length=declared_length) from exc
    if received > limit:
        drain(stream)
        raise too_large(limit)
    if declared_length is not None and received < declared_length:
        raise cut_off(received, declared_length)
    return b"".join(chunks)


def cut_off(received: int, declared_length: int) -> MalformedBody:
    return MalformedBody(f"the request body ended after {received} of its declared {declared_length} bytes",
                         received=received, content_length=declared_length)
