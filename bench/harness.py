"""Processes and load for the benchmarks: the same pieces the end-to-end tests use."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.procs import VENV_BIN, Process, free_port  # noqa: E402
from tests.support.stack import SHIPPED_SECRETS, Stack, wait_until  # noqa: E402

GUNICORN_SETTINGS = {"RELAY_WORKERS": os.environ.get("BENCH_WORKERS", "2"),
                     "RELAY_THREADS": os.environ.get("BENCH_THREADS", "8")}


@dataclass(frozen=True)
class WrkResult:
    requests: int
    non_2xx: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def acked_per_s(self) -> float:
        return (self.requests - self.non_2xx) / self.seconds


def require_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is needed: apt-get install -y wrk")
    return found


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        return float("nan")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url: str, *, seconds: int = 10, connections: int = 32, threads: int = 2,
            path: str = "/hooks/generic-json") -> WrkResult:
    out = subprocess.run([require_wrk(), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-s", str(ROOT / "bench" / "lead.lua"), url, "--", path],
                         capture_output=True, text=True, check=True).stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(s|m)", out)
    duration = float(total.group(2)) * (60 if total.group(3) == "m" else 1)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(requests=int(total.group(1)), non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
                     errors=sum(map(int, errors.groups())) if errors else 0, seconds=duration,
                     p50_ms=_ms(re.search(r"50%\s+(\S+)", out).group(1)),
                     p99_ms=_ms(re.search(r"99%\s+(\S+)", out).group(1)))


def bare_server(workdir: Path, port: int) -> Process:
    env = {"BARE_DB": str(workdir / "bare.db"), "PYTHONPATH": str(ROOT)}
    argv = [str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers",
            GUNICORN_SETTINGS["RELAY_WORKERS"], "--worker-class", "gthread", "--threads",
            GUNICORN_SETTINGS["RELAY_THREADS"], "bench.bare_app:app"]
    # Run from workdir: gunicorn would otherwise pick up the relay's gunicorn.conf.py.
    return Process(argv, log_path=workdir / "bare.log", env=env, cwd=workdir)


def relay_stack(workdir: Path, **env: str) -> Stack:
    return Stack(workdir, env_overrides={**GUNICORN_SETTINGS, **env})


__all__ = ["Process", "SHIPPED_SECRETS", "Stack", "WrkResult", "bare_server", "free_port", "relay_stack",
           "run_wrk", "wait_until"]
