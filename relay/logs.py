"""One JSON line per event, with phones and emails masked and secrets never written.

Secrets are scrubbed by value: every environment variable a mapping references
as a secret is registered with :func:`register_secret`, and any occurrence of
its value in a log line is replaced. That catches a token that slipped into a
URL or an exception message, not just the fields we know about.
"""
from __future__ import annotations

import json
import logging
import logging.config
import re
import threading
import time
from typing import Any, Iterable, Mapping
from urllib.parse import quote, quote_plus, unquote, urlsplit

from gunicorn.glogging import Logger as GunicornBaseLogger

# Also as they look percent-encoded in a logged URL: %2B for +, %28/%29 for parentheses,
# %20 or + for a space, %40 for @.
_SEP = r"(?:[\s.+-]|%20)?"
_PHONE = re.compile(r"(?<![\w+.])((?:\+|%2B)\d{10,15}"
                    rf"|(?:(?:\+|%2B)?1{_SEP})?(?:\(|%28)?\d{{3}}(?:\)|%29)?{_SEP}\d{{3}}{_SEP}\d{{4}})"
                    r"(?!\w|\.\d)")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(?:@|%40)([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# Cheap necessary conditions for a match, so most lines skip the costly scans above:
# every phone match holds 3 digits, at most 6 characters (")%20" style), 3 digits, at most
# 3 characters, then 4 digits; every email match holds an at sign, plain or percent-encoded.
_PHONE_HINT = re.compile(r"\d{3}.{0,6}\d{3}.{0,3}\d{4}", re.DOTALL)
_RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

_secrets: tuple[str, ...] = ()  # longest first, so a secret inside another is not half-masked
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Never write ``value``: not as is, JSON-escaped or percent-encoded (as in a URL)."""
    global _secrets
    # Short values would mask ordinary words; real tokens are long.
    if not value or len(value) < 6:
        return
    forms = {value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1],
             quote(value, safe=""), quote_plus(value, safe="")}
    with _secrets_lock:
        _secrets = tuple(sorted(set(_secrets) | forms, key=len, reverse=True))


def register_secrets(values: Iterable[str | None]) -> None:
    for value in values:
        register_secret(value)


def register_env_secrets(names: Iterable[str], env: Mapping[str, str]) -> None:
    """Register the values of the named environment variables (those that are set)."""
    register_secrets(env.get(name) for name in names)


def register_url_password(url: str | None) -> None:
    """A database URL's password, should it ever appear in an error message."""
    if not url:
        return
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password:
        register_secrets([password, unquote(password)])


def mask_phone(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    return "***" + digits[-2:] if len(digits) >= 4 else "***"


def mask_text(text: str) -> str:
    """Mask what could identify a person or open an account."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "[secret]")
    if "@" in text or "%40" in text:
        text = _EMAIL.sub(_mask_email_match, text)
    if _PHONE_HINT.search(text) is None:
        return text
    return _PHONE.sub(_mask_phone_match, text)


def _mask_email_match(match: re.Match[str]) -> str:
    return f"{match.group(1)}***@{match.group(2)}"


def _mask_phone_match(match: re.Match[str]) -> str:
    return mask_phone(match.group(1))


class JsonFormatter(logging.Formatter):
    # (whole second, its text): lines come many per second, strftime is not free.
    _second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": f"{self.second_text(int(record.created))}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return mask_text(json.dumps(entry, default=str, ensure_ascii=False))

    def second_text(self, second: int) -> str:
        cached = self._second  # one read: another thread may replace it meanwhile
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second = cached
        return cached[1]


def logging_config(level: str = "INFO", *, access_log: bool = False) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: every logger, gunicorn's included, as JSON on stderr.

    The relay writes its own line per request, so gunicorn's access log is off unless
    asked for; when on, it goes through the same masking.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "relay.logs.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO" if access_log else "CRITICAL", "handlers": [],
                                "propagate": access_log},
            "werkzeug": {"handlers": [], "propagate": True},
        },
    }


class GunicornLogger(GunicornBaseLogger):
    """gunicorn's logger, minus the access line's cost while ``gunicorn.access`` is silenced.

    gunicorn builds every access line (a dict of a dozen fields) whenever a logging
    config is given, even when that logger then drops it; the relay writes its own line.
    """

    @property
    def access_log_enabled(self) -> bool:
        return bool(super().access_log_enabled) and self.access_log.isEnabledFor(logging.INFO)

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if self.access_log.isEnabledFor(logging.INFO):
            super().access(resp, req, environ, request_time)


def configure(level: str = "INFO", *, access_log: bool = False) -> None:
    """Route the relay's and gunicorn's logs through the JSON formatter on stderr."""
    logging.config.dictConfig(logging_config(level, access_log=access_log))
