"""Every error leaves the app as the same JSON body: ``{"error": {"code", "message", ...}}``."""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from relay.errors import RateLimited, RelayError

log = logging.getLogger("relay.web")

# werkzeug's own HTTP errors, under the relay's codes (each one in relay.outcomes).
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
HTTP_CODE_PREFIX = "http_"  # any other HTTP error: http_408, http_431, ...


def error_response(status: int, code: str, message: str, **details: object) -> Response:
    response = jsonify({"error": {"code": code, "message": message, **details}})
    response.status_code = status
    return response


def handle_relay_error(error: RelayError) -> Response:
    response = jsonify(error.to_dict())
    response.status_code = error.status
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def handle_http_exception(error: HTTPException) -> Response | HTTPException:
    # Routing redirects are HTTPExceptions too; they must stay redirects.
    if error.code is None or error.code < 400:
        return error
    code = HTTP_CODES.get(error.code, f"{HTTP_CODE_PREFIX}{error.code}")
    response = error_response(error.code, code, error.description or error.name)
    valid_methods = getattr(error, "valid_methods", None)
    if error.code == 405 and valid_methods:
        response.headers["Allow"] = ", ".join(valid_methods)
    return response


def handle_unexpected(error: Exception) -> Response:
    log.exception("unexpected error while handling a request")
    return error_response(500, "internal_error", "the relay failed to handle this request")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(RelayError, handle_relay_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
