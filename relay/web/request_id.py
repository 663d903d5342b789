"""``X-Request-ID``: taken from the request when sane, generated otherwise, echoed on every response."""
from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

HEADER = "X-Request-ID"
ENVIRON_KEY = "HTTP_X_REQUEST_ID"  # the WSGI spelling of HEADER
ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def current_request_id() -> str:
    ctx = g._get_current_object()  # type: ignore[attr-defined]  # one context lookup, not three
    request_id: str | None = getattr(ctx, "request_id", None)
    if request_id is None:
        request_id = ctx.request_id = choose_request_id(request.environ.get(ENVIRON_KEY))
    return request_id


def choose_request_id(offered: str | None) -> str:
    # A vendor's id is kept so both sides can trace the same lead, but only when it
    # is harmless in a header and a log line.
    if offered and ACCEPTABLE.match(offered):
        return offered
    return uuid.uuid4().hex


def add_request_id(response: Response) -> Response:
    response.headers[HEADER] = current_request_id()
    return response


def remember_request_id() -> None:
    current_request_id()


def init_request_id(app: Flask) -> None:
    app.before_request(remember_request_id)
    app.after_request(add_request_id)
