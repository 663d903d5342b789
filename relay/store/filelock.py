"""A write lock shared by every process that opens the same SQLite file.

SQLite's own lock is taken with a busy handler that sleeps 1, 2, 5, 10, 25, 50,
100 ms between tries. Under load the process that just committed takes the lock
again at once while the others sleep, so one gunicorn worker does all the
writing and the others' requests wait for seconds. Holding this lock around
every write transaction hands the file over promptly instead: a waiter retries
every fraction of a millisecond, and a crashed holder's lock dies with it.
"""
from __future__ import annotations

import fcntl
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

RETRY_S = 0.0002


class WriteLockTimeout(OSError):
    pass


class WriteLock:
    def __init__(self, path: Path, timeout_s: float) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._local = threading.local()

    def _descriptor(self) -> int:
        # One descriptor per thread: flock() excludes open files, not processes or threads.
        fd = getattr(self._local, "fd", None)
        if fd is None or self._local.pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            self._local.fd, self._local.pid = fd, os.getpid()
        return fd

    @contextmanager
    def held(self) -> Iterator[None]:
        fd = self._descriptor()
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WriteLockTimeout(
                        f"database is locked: no write turn within {self.timeout_s:g}s") from None
                time.sleep(RETRY_S)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
