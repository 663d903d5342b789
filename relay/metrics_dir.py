"""The per-process metric files' directory, as the gunicorn master looks after it.

Kept apart from relay.metrics so the master, which only empties the directory at start and
drops a dead worker's gauges, does not import prometheus_client at all: every process's idle
memory counts (see docs/performance.md).
"""
from __future__ import annotations

import os


def wipe_multiprocess_dir(directory: str) -> None:
    """Remove what a previous run left: stale files would be added to this run's counts."""
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))


def mark_worker_dead(pid: int, directory: str) -> None:
    """A worker exited: its live gauges go; its counters stay in the totals."""
    if directory:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, directory)
