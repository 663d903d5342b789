"""One JSON line per event, with phones and emails masked and secrets never written.

Secrets are scrubbed by value: every environment variable a mapping references
as a secret is registered with :func:`register_secret`, and any occurrence of
its value in a log line is replaced. That catches a token that slipped into a
URL or an exception message, not just the fields we know about.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from typing import Any

_PHONE = re.compile(r"(?<![\w+.])((?:\+|%2B)\d{10,15}|(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4})(?!\w|\.\d)")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    # Short values would mask ordinary words; real tokens are long.
    if value and len(value) >= 6:
        with _secrets_lock:
            _secrets.add(value)


def mask_phone(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    return "***" + digits[-2:] if len(digits) >= 4 else "***"


def mask_text(text: str) -> str:
    """Mask what could identify a person or open an account."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "[secret]")
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE.sub(lambda m: mask_phone(m.group(1)), text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
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


def configure(level: str = "INFO") -> None:
    """Route the relay's and gunicorn's logs through the JSON formatter on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("gunicorn.error", "gunicorn.access", "werkzeug"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
