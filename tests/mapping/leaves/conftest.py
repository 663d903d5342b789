from __future__ import annotations

from pathlib import Path

import pytest

from relay.mapping.model import InboundRequest

PAYLOADS = Path(__file__).resolve().parents[2] / "payloads"


def load_sample(name: str) -> InboundRequest:
    """An InboundRequest from tests/payloads/<name>.http (see the format in each file's comments)."""
    raw = (PAYLOADS / f"{name}.http").read_bytes()
    lines = raw.split(b"\n")
    while lines[0].startswith(b"#"):
        lines.pop(0)
    method, target, _ = lines.pop(0).decode().split(" ", 2)
    headers: dict[str, str] = {}
    while lines and lines[0].strip():
        name_, _, value = lines.pop(0).decode().partition(":")
        headers[name_.strip()] = value.strip()
    body = b"\n".join(lines[1:])
    if body.endswith(b"\n"):
        body = body[:-1]
    _, _, query = target.partition("?")
    return InboundRequest(method=method, content_type=headers.get("Content-Type", ""), body=body,
                          query=query, headers=headers)


@pytest.fixture
def sample():
    return load_sample
