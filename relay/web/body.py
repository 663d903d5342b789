"""Read a request body with a hard per-source limit, enforced while reading."""
from __future__ import annotations

from typing import IO

from werkzeug.exceptions import ClientDisconnected

from relay.errors import MalformedBody, PayloadTooLarge

CHUNK_BYTES = 64 * 1024


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body exceeds the limit of {limit} bytes", limit=limit)


def check_declared_length(content_length: int | None, limit: int) -> None:
    if content_length is not None and content_length > limit:
        raise too_large(limit)


def read_limited(stream: IO[bytes], limit: int) -> bytes:
    """Read at most ``limit`` bytes; one byte more means the body is too large.

    Chunked uploads declare no length, so the stream itself is the only place
    the limit can be enforced.
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
        raise MalformedBody("the request body ended before its declared Content-Length") from exc
    if received > limit:
        raise too_large(limit)
    return b"".join(chunks)
