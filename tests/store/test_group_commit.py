"""The writer that lets many threads share one commit."""
from __future__ import annotations

import signal
import sqlite3
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import pytest

from relay.errors import StoreUnavailable
from relay.store import group_commit
from relay.store.group_commit import GroupCommitWriter


def writer_for(path: Path, commit_delay_s: float = 0.0) -> GroupCommitWriter:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER UNIQUE)")
        return conn
    return GroupCommitWriter(connect, lambda exc: StoreUnavailable(f"cannot commit: {exc}"),
                             commit_delay_s=commit_delay_s)


def rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return sorted(n for (n,) in conn.execute("SELECT n FROM t"))


def test_many_threads_each_get_their_own_result_and_everything_commits(tmp_path: Path) -> None:
    writer = writer_for(tmp_path / "db")
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda n: writer.run(
            lambda conn: conn.execute("INSERT INTO t (n) VALUES (?)", (n,)).lastrowid and n), range(500)))
    assert results == list(range(500))
    assert rows(tmp_path / "db") == list(range(500))


def test_a_failing_write_fails_alone(tmp_path: Path) -> None:
    writer = writer_for(tmp_path / "db")
    writer.run(lambda conn: conn.execute("INSERT INTO t (n) VALUES (1)"))
    gate = threading.Event()

    def slow(conn: sqlite3.Connection) -> None:  # holds the writer so the next three share a batch
        gate.wait(5)

    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(writer.run, slow)
        duplicate = pool.submit(writer.run, lambda conn: conn.execute("INSERT INTO t (n) VALUES (1)"))
        good = pool.submit(writer.run, lambda conn: conn.execute("INSERT INTO t (n) VALUES (2)"))
        mistake = pool.submit(writer.run, lambda conn: 1 / 0)
        gate.set()
        first.result()
        with pytest.raises(StoreUnavailable):
            duplicate.result()
        good.result()
        with pytest.raises(ZeroDivisionError):
            mistake.result()
    assert rows(tmp_path / "db") == [1, 2]


def test_the_writer_survives_a_commit_that_cannot_start(tmp_path: Path) -> None:
    writer = writer_for(tmp_path / "db")
    blocker = sqlite3.connect(tmp_path / "db", isolation_level=None, timeout=0)
    writer.run(lambda conn: conn.execute("PRAGMA busy_timeout = 50"))
    blocker.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreUnavailable, match="locked"):
        writer.run(lambda conn: conn.execute("INSERT INTO t (n) VALUES (3)"))
    blocker.execute("ROLLBACK")
    writer.run(lambda conn: conn.execute("INSERT INTO t (n) VALUES (4)"))
    assert rows(tmp_path / "db") == [4]


def test_a_lone_write_runs_on_its_callers_own_thread(tmp_path: Path) -> None:
    writer = writer_for(tmp_path / "db")
    assert writer.run(lambda conn: threading.get_ident()) == threading.get_ident()


class SlowWrite:
    """A write that holds its commit open until ``gate`` is set; ``started`` once it runs."""

    def __init__(self) -> None:
        self.gate, self.started = threading.Event(), threading.Event()

    def __call__(self, conn: sqlite3.Connection) -> None:
        self.started.set()
        self.gate.wait(5)


def test_writes_that_wait_for_a_commit_share_the_next_one(tmp_path: Path) -> None:
    writer = writer_for(tmp_path / "db")
    slow = SlowWrite()
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(writer.run, slow)
        slow.started.wait(5)
        waiting = [pool.submit(writer.run, lambda conn, n=n: (conn.execute("INSERT INTO t (n) VALUES (?)", (n,)),
                                                             threading.get_ident())[1]) for n in range(5)]
        while len(writer._waiting) < 5:  # every one has queued behind the slow commit
            threading.Event().wait(0.01)
        slow.gate.set()
        first.result()
        runners = {future.result() for future in waiting}
    assert len(runners) == 1  # one thread led the next commit and ran all five
    assert rows(tmp_path / "db") == [0, 1, 2, 3, 4]


class Interrupted(Exception):
    pass


def test_an_interrupted_wait_leaves_the_writer_working(tmp_path: Path) -> None:
    writer = writer_for(tmp_path / "db")
    slow = SlowWrite()

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(writer.run, slow)
            slow.started.wait(5)
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(Interrupted):  # this (main) thread waits behind the slow commit
                writer.run(lambda conn: conn.execute("INSERT INTO t (n) VALUES (1)"))
            slow.gate.set()
            first.result()
    finally:
        signal.signal(signal.SIGALRM, previous)
    writer.run(lambda conn: conn.execute("INSERT INTO t (n) VALUES (2)"))
    assert rows(tmp_path / "db") == [2]  # the interrupted write was dropped, the next one runs


def insert(n: int) -> Callable[[sqlite3.Connection], int]:
    """Inserts ``n``; answers the thread that ran it."""
    return lambda conn: (conn.execute("INSERT INTO t (n) VALUES (?)", (n,)), threading.get_ident())[1]


def test_a_busy_writer_waits_for_more_writes_and_a_quiet_one_does_not(tmp_path: Path, monkeypatch) -> None:
    writer = writer_for(tmp_path / "db", commit_delay_s=5.0)
    arrivals: list[Future[int]] = []
    pool = ThreadPoolExecutor(4)

    def waiting_for_more(seconds: float) -> None:  # the leader's delay: three more writes arrive
        assert seconds == 5.0
        arrivals.extend(pool.submit(writer.run, insert(n)) for n in (11, 12, 13))
        while len(writer._waiting) < 3:
            threading.Event().wait(0.01)

    monkeypatch.setattr(group_commit.time, "sleep", waiting_for_more)
    writer.run(insert(1))  # quiet: no delay (waiting_for_more would have queued three more)
    assert not arrivals
    slow = SlowWrite()
    with pool:
        first = pool.submit(writer.run, slow)
        slow.started.wait(5)
        behind = [pool.submit(writer.run, insert(n)) for n in (2, 3)]
        while len(writer._waiting) < 2:
            threading.Event().wait(0.01)
        slow.gate.set()
        first.result()
        [future.result() for future in behind]  # a commit of two: the writer is busy now
        leader = writer.run(insert(4))
        runners = {future.result() for future in arrivals}
    assert runners == {leader}  # the three that arrived during the delay shared the leader's commit
    assert rows(tmp_path / "db") == [1, 2, 3, 4, 11, 12, 13]
