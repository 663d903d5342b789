"""The relay's one error model.

Every error a client or an operator can see is a subclass of :class:`RelayError`
with an HTTP status and a stable machine-readable ``code``. They all render to
the same JSON body::

    {"error": {"code": "lead_refused", "message": "...", ...details}}

This module is pure (no Flask), so the mapping package can raise these errors
while staying importable offline.
"""
from __future__ import annotations

from typing import Any


class RelayError(Exception):
    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = {k: v for k, v in details.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.details}}

    def __str__(self) -> str:
        return self.message


class BadRequest(RelayError):
    status = 400
    code = "bad_request"


class MalformedBody(BadRequest):
    code = "malformed_body"


class FilesRefused(BadRequest):
    code = "files_refused"


class Unauthorized(RelayError):
    status = 401
    code = "unauthorized"


class Forbidden(RelayError):
    status = 403
    code = "forbidden"


class NotFound(RelayError):
    status = 404
    code = "not_found"


class UnknownSource(NotFound):
    code = "unknown_source"


class MethodNotAllowed(RelayError):
    status = 405
    code = "method_not_allowed"


class PayloadTooLarge(RelayError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(RelayError):
    status = 415
    code = "unsupported_media_type"


class LeadRefused(RelayError):
    """The mapping refused the lead: a required value is missing or invalid."""

    status = 422
    code = "lead_refused"


class RateLimited(RelayError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.retry_after = retry_after


class ServiceUnavailable(RelayError):
    status = 503
    code = "unavailable"


class StoreUnavailable(ServiceUnavailable):
    """The outbox cannot commit; the vendor must retry, so never answer 2xx."""

    code = "store_unavailable"


class SourceMisconfigured(ServiceUnavailable):
    """A source's secret is missing: it fails closed instead of running open."""

    code = "source_misconfigured"
