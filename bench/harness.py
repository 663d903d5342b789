"""Processes and load for the benchmarks: the same pieces the end-to-end tests use."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.procs import VENV_BIN, Process, free_port, sandbox
from tests.support.stack import SHIPPED_SECRETS, Stack, wait_until

GUNICORN_SETTINGS = {"RELAY_WORKERS": os.environ.get("BENCH_WORKERS", "2"),
                     "RELAY_THREADS": os.environ.get("BENCH_THREADS", "16")}


SUMMARY = re.compile(r"SUMMARY acked=(\d+) refused=(\d+) seconds=([\d.]+) p50_us=(\d+) p99_us=(\d+)"
                     r" socket_errors=(\d+)")


@dataclass(frozen=True)
class WrkResult:
    acked: int
    refused: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int

    @property
    def acked_per_s(self) -> float:
        return self.acked / self.seconds if self.seconds else 0.0


def require_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is needed: apt-get install -y wrk")
    return found


def run_wrk(url: str, *, seconds: int = 10, connections: int = 32, threads: int = 2,
            path: str = "/hooks/generic-json", timeout_s: int = 2) -> WrkResult:
    """wrk with bench/lead.lua: a distinct JSON lead per request, 2xx answers counted."""
    completed = subprocess.run([require_wrk(), f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
                                f"--timeout={timeout_s}s",
                                "-s", str(ROOT / "bench" / "lead.lua"), url, "--", path, str(time.time_ns())],
                               capture_output=True, text=True, check=True)
    found = SUMMARY.search(completed.stdout)
    if found is None:
        raise RuntimeError(f"wrk printed no summary:\n{completed.stdout}\n{completed.stderr}")
    acked, refused, duration, p50_us, p99_us, errors = found.groups()
    return WrkResult(int(acked), int(refused), float(duration), int(p50_us) / 1000,
                     int(p99_us) / 1000, int(errors))


def bare_server(workdir: Path, port: int) -> Process:
    env = {"BARE_DB": str(workdir / "bare.db"), "PYTHONPATH": str(ROOT)}
    argv = [str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers",
            GUNICORN_SETTINGS["RELAY_WORKERS"], "--worker-class", "gthread", "--threads",
            GUNICORN_SETTINGS["RELAY_THREADS"], "bench.bare_app:app"]
    # Run from workdir: gunicorn would otherwise pick up the relay's gunicorn.conf.py.
    return Process(argv, log_path=workdir / "bare.log", env=env, cwd=workdir)


TICKS_PER_S = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it (gunicorn's master and its workers, say)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU the processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS_PER_S


def relay_stack(workdir: Path, **env: str) -> Stack:
    return Stack(workdir, env_overrides={**GUNICORN_SETTINGS, **env})


__all__ = [
    "PAGE_KIB",
    "ROOT",
    "SHIPPED_SECRETS",
    "VENV_BIN",
    "Process",
    "Stack",
    "WrkResult",
    "bare_server",
    "cpu_seconds",
    "free_port",
    "process_tree",
    "relay_stack",
    "run_wrk",
    "sandbox",
    "wait_until",
]
