"""Group commit: the writes of many threads share one transaction and one commit.

With ``synchronous=FULL`` every commit waits for the disk, and every writer
waits for SQLite's file lock (whose busy handler sleeps in steps of several
milliseconds). Sixteen request threads each committing their own insert spend
most of their time in those two waits. Here a thread with a write queues it; if no
commit is running, it becomes the leader: it takes every write waiting, runs them
in one ``BEGIN IMMEDIATE`` transaction, commits once and wakes the threads whose
writes it ran. Writes that arrive meanwhile wait for the next leader. A quiet
relay's lone write runs at once on its own thread, with no hand-off at all; a busy
one pays one disk sync for a whole batch. While writes keep arriving together (the last
commit carried more than one), a leader first waits ``commit_delay_s`` (a couple of
milliseconds) so that more share its sync, as PostgreSQL's ``commit_delay`` does: under load
that is fewer syncs per lead, and a lone write on a quiet relay never waits.

Each write still commits before its caller returns: nothing is acknowledged
before it is durable. When one write of a batch raises, the batch is rolled back
and its writes run again one transaction each, so only the failing write fails;
a failed commit fails the whole batch, as it must. Writes are closures over
values fixed by their callers (ids, times), so running one again is safe.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")
Write = Callable[[sqlite3.Connection], T]

MAX_BATCH = 128


class _Job(Generic[T]):
    """One write and what became of it; ``wake`` is released when it is done or must lead."""

    __slots__ = ("done", "elected", "error", "result", "wake", "write")

    def __init__(self, write: Write[T]) -> None:
        self.write = write
        self.done = False
        self.elected = False  # chosen to lead the next commit
        self.result: Any = None
        self.error: BaseException | None = None
        self.wake = threading.Lock()
        self.wake.acquire()

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        if not self.done:
            self.result, self.error, self.done = result, error, True


class GroupCommitWriter:
    def __init__(self, connect: Callable[[], sqlite3.Connection],
                 unavailable: Callable[[BaseException], Exception],
                 write_turn: Callable[[], AbstractContextManager[None]] = nullcontext, *,
                 commit_delay_s: float = 0.0) -> None:
        self._connect = connect
        self._unavailable = unavailable
        self._write_turn = write_turn
        self._commit_delay_s = commit_delay_s
        self._fork_guard = threading.Lock()
        self._start_over()

    def _start_over(self) -> None:
        # Locks and a connection inherited through fork() may be held by threads that did
        # not come along: a child process starts with its own.
        self._pid = os.getpid()
        self._mutex = threading.Lock()
        self._waiting: list[_Job[Any]] = []
        self._committing = False
        self._busy = False  # the last commit carried more than one write
        self._conn: sqlite3.Connection | None = None

    def run(self, write: Write[T]) -> T:
        """Run ``write`` in a committed transaction; raises what it raised, or unavailable."""
        if self._pid != os.getpid():
            with self._fork_guard:
                if self._pid != os.getpid():
                    self._start_over()
        job: _Job[T] = _Job(write)
        with self._mutex:
            leads = not self._committing
            if leads:
                self._committing = True
            else:
                self._waiting.append(job)
        if not leads:
            try:
                job.wake.acquire()  # released once its write is done, or when it is its turn to lead
            except BaseException:
                self._abandon(job)
                raise
        if not job.done:
            self._lead(job)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[no-any-return]

    def _lead(self, job: _Job[Any]) -> None:
        """Commit ``job`` with every write waiting, wake their threads, hand the lead on."""
        if self._busy and self._commit_delay_s > 0:
            time.sleep(self._commit_delay_s)  # no lock held: writes arriving now queue for this commit
        with self._mutex:
            batch = [job, *self._waiting[:MAX_BATCH - 1]]
            del self._waiting[:MAX_BATCH - 1]
            self._busy = len(batch) > 1
        try:
            self._commit_turn(batch)
        finally:
            for other in batch[1:]:
                other.wake.release()
            self._hand_on()

    def _hand_on(self) -> None:
        """The first write still waiting leads the next commit; none: no commit is running."""
        with self._mutex:
            successor = self._waiting.pop(0) if self._waiting else None
            if successor is not None:
                successor.elected = True
            self._committing = successor is not None
        if successor is not None:
            successor.wake.release()

    def _abandon(self, job: _Job[Any]) -> None:
        """A waiting thread was interrupted. Its write is dropped if still waiting (one in a
        running commit completes); a lead it was given passes on, or every later write would
        wait for a commit nobody runs."""
        with self._mutex:
            if job in self._waiting:
                self._waiting.remove(job)
                return
            elected = job.elected and not job.done
        if elected:
            self._hand_on()

    def _commit_turn(self, batch: list[_Job[Any]]) -> None:
        try:
            with self._write_turn():
                self._commit(batch)
        except BaseException as exc:
            if self._conn is not None:
                _rollback(self._conn)
            self._conn = None
            for job in batch:
                job.finish(error=self._unavailable(exc))
            if not isinstance(exc, Exception):
                raise  # an interrupt stops the leader's own thread; the others get unavailable

    def _commit(self, batch: list[_Job[Any]]) -> None:
        try:
            results = self._transaction([job.write for job in batch])
        except _WriteFailed as failed:
            if len(batch) > 1:
                # Rolled back whole: run each write alone, so only the failing one fails.
                for job in batch:
                    self._commit([job])
                return
            error = failed.cause
            batch[0].finish(error=self._unavailable(error) if isinstance(error, sqlite3.Error) else error)
            return
        except (sqlite3.Error, OSError) as exc:
            self._conn = None
            for job in batch:
                job.finish(error=self._unavailable(exc))
            return
        for job, result in zip(batch, results, strict=True):
            job.finish(result)

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


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass
