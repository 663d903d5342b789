"""One JSON line per event, masked by :mod:`relay.pii`, for the relay and gunicorn alike.

Secrets are scrubbed by value: every environment variable a mapping references
as a secret is registered with :func:`relay.pii.register_secret`, and any
occurrence of its value in a log line is replaced. That catches a token that
slipped into a URL or an exception message, not just the fields we know about.
"""
from __future__ import annotations

import contextlib
import json
import logging
import logging.config
import os
import threading
import time
import weakref
from typing import Any, TextIO

from gunicorn.glogging import Logger as GunicornBaseLogger

from relay.pii import mask_text

# How long an info line may wait to be written with others; a warning or worse never waits.
BATCH_S = 0.1
BATCH_LINES = 1000  # written at once when this many wait

# Record attributes, and the keys every line starts with, are never written as extra fields.
_RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "ts", "level", "logger"}


class JsonFormatter(logging.Formatter):
    # (whole second, its text): lines come many per second, strftime is not free.
    _second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        # The time, level and logger are ours and hold nothing personal: only the rest is
        # masked, and the timestamp's digits never reach the phone scan.
        head = (f'{{"ts": "{self.second_text(int(record.created))}.{int(record.msecs):03d}Z", '
                f'"level": {json.dumps(record.levelname.lower())}, "logger": {json.dumps(record.name)}, ')
        entry: dict[str, Any] = {"msg": record.getMessage()}
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return head + mask_text(json.dumps(entry, default=str, ensure_ascii=False))[1:]

    def second_text(self, second: int) -> str:
        cached = self._second  # one read: another thread may replace it meanwhile
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second = cached
        return cached[1]


class BatchingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes lines in batches: an info line at most ``BATCH_S`` late, a warning or worse at once,
    with every line before it.

    A lead makes two info lines. Written one by one, each is a write to stderr that hands the
    GIL to another of the worker's threads; under load that cost 13% of the relay's delivered
    leads a second (docs/performance.md). A SIGKILL can lose the last ``BATCH_S`` of info
    lines, never a warning or an error, and never a lead: the outbox records every one.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []
        self._writer_pid = 0  # the process whose writer thread runs; none survives a fork
        self._stopped = threading.Event()
        # A child must not write the parent's lines again. Weakly held: a handler closed and
        # dropped (a logging reconfiguration) must not be flushed at every later fork.
        handler = weakref.ref(self)
        os.register_at_fork(before=lambda: _flush_before_fork(handler()))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        with self.lock:  # type: ignore[union-attr]
            self._waiting.append(line)
            if record.levelno >= logging.WARNING or len(self._waiting) >= BATCH_LINES:
                self._write_waiting()
            elif self._writer_pid != os.getpid():
                self._writer_pid = os.getpid()
                threading.Thread(target=self._write_every_batch, name="relay-log-writer", daemon=True).start()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_waiting()
        super().flush()

    def close(self) -> None:
        self.flush()
        self._stopped.set()
        super().close()

    def _write_every_batch(self) -> None:
        while not self._stopped.wait(BATCH_S):
            with contextlib.suppress(Exception):  # the stream went away: nothing is left to tell
                self.flush()

    def _write_waiting(self) -> None:
        if not self._waiting:
            return
        text, self._waiting = "\n".join(self._waiting) + "\n", []
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": "writing log lines failed"}))


def _flush_before_fork(handler: BatchingStreamHandler | None) -> None:
    if handler is not None and not handler._stopped.is_set():
        with contextlib.suppress(Exception):
            handler.flush()


def logging_config(level: str = "INFO", *, access_log: bool = False) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: every logger, gunicorn's included, as JSON on stderr.

    The relay writes its own line per request, so gunicorn's access log is off unless
    asked for; when on, it goes through the same masking.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "relay.logs.JsonFormatter"}},
        "handlers": {"stderr": {"class": "relay.logs.BatchingStreamHandler", "formatter": "json",
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
