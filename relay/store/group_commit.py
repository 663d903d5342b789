"""Group commit: one writer thread per process runs the writes of many threads in one transaction.

With ``synchronous=FULL`` every commit waits for the disk, and every writer
waits for SQLite's file lock (whose busy handler sleeps in steps of several
milliseconds). Sixteen request threads each committing their own insert spend
most of their time in those two waits. Here a request thread hands its write to
the process's writer and blocks on a future; the writer takes whatever writes
are waiting, runs them in one ``BEGIN IMMEDIATE`` transaction and commits once.
An idle writer runs a lone write at once, so a quiet relay pays no extra latency;
a busy one pays one disk sync for a whole batch.

Each write still commits before its caller returns: nothing is acknowledged
before it is durable. When one write of a batch raises, the batch is rolled back
and its writes run again one transaction each, so only the failing write fails;
a failed commit fails the whole batch, as it must. Writes are closures over
values fixed by their callers (ids, times), so running one again is safe.
"""
from __future__ import annotations

import os
import queue
import sqlite3
import threading
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Callable, TypeVar

T = TypeVar("T")
Write = Callable[[sqlite3.Connection], T]
Job = tuple[Write[Any], "Future[Any]"]

MAX_BATCH = 128


class GroupCommitWriter:
    def __init__(self, connect: Callable[[], sqlite3.Connection],
                 unavailable: Callable[[BaseException], Exception],
                 write_turn: Callable[[], AbstractContextManager[None]] = nullcontext) -> None:
        self._connect = connect
        self._unavailable = unavailable
        self._write_turn = write_turn
        self._queue: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._conn: sqlite3.Connection | None = None

    def run(self, write: Write[T]) -> T:
        """Run ``write`` in a committed transaction; raises what it raised, or unavailable."""
        self._ensure_thread()
        future: Future[T] = Future()
        self._queue.put((write, future))
        return future.result()

    def _ensure_thread(self) -> None:
        # A writer inherited through fork() is not running in this process: start our own.
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._queue = queue.SimpleQueue()
                self._conn = None
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="relay-outbox-writer", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                with self._write_turn():
                    self._commit(batch)
            except Exception as exc:
                if self._conn is not None:
                    _rollback(self._conn)
                self._conn = None
                _fail_all(batch, self._unavailable(exc))

    def _commit(self, batch: list[Job]) -> None:
        try:
            results = self._transaction([write for write, _ in batch])
        except _WriteFailed as failed:
            if len(batch) > 1:
                # Rolled back whole: run each write alone, so only the failing one fails.
                for item in batch:
                    self._commit([item])
                return
            error = failed.cause
            _fail_all(batch, self._unavailable(error) if isinstance(error, sqlite3.Error) else error)
            return
        except (sqlite3.Error, OSError) as exc:
            self._conn = None
            _fail_all(batch, self._unavailable(exc))
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)

    def _transaction(self, writes: list[Write[Any]]) -> list[object]:
        """Every write in one transaction, or none of them (raising _WriteFailed for a write's error)."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            results = [_run(conn, write) for write in writes]
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        return results

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn


class _WriteFailed(Exception):
    """A write raised: its transaction is rolled back and the error goes to its caller."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _run(conn: sqlite3.Connection, write: Write[Any]) -> object:
    try:
        return write(conn)
    except Exception as exc:
        raise _WriteFailed(exc) from exc


def _fail_all(batch: list[Job], error: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass
