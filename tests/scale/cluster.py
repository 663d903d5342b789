"""Relay instances, the sandbox and nginx as one deployment on this machine."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.support.procs import ROOT, Process, free_port, gunicorn, sandbox

NGINX_CONF = ROOT / "deploy" / "nginx.conf"
SHIPPED_UPSTREAMS = ("relay1:8080", "relay2:8080")
SHIPPED_LISTEN = "listen 80;"

# Made-up secrets the test mappings reference.
SECRETS = {"GENERIC_JSON_LEAD_TOKEN": "generic-json-token-6e5d", "GENERIC_JSON_API_KEY": "example-key"}
API_KEY = SECRETS["GENERIC_JSON_API_KEY"]


def nginx_config(listen_port: int, upstream_ports: tuple[int, int]) -> str:
    """deploy/nginx.conf with only the addresses changed: the file the docs ship is the one tested."""
    text = NGINX_CONF.read_text()
    for shipped, port in zip(SHIPPED_UPSTREAMS, upstream_ports, strict=True):
        assert f"server {shipped} " in text, f"deploy/nginx.conf no longer names {shipped}"
        text = text.replace(f"server {shipped} ", f"server 127.0.0.1:{port} ")
    assert SHIPPED_LISTEN in text, "deploy/nginx.conf no longer has 'listen 80;'"
    return text.replace(SHIPPED_LISTEN, f"listen 127.0.0.1:{listen_port};")


def nginx(binary: str, workdir: Path, listen_port: int, upstream_ports: tuple[int, int]) -> Process:
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(nginx_config(listen_port, upstream_ports))
    directives = f"daemon off; pid {workdir / 'nginx.pid'}; error_log {workdir / 'error.log'} warn;"
    return Process([binary, "-p", str(workdir), "-c", str(conf), "-g", directives],
                   log_path=workdir / "nginx.log")


@dataclass
class Cluster:
    workdir: Path
    database_url: str
    mappings_src: Path
    lease_s: float = 3.0
    sandbox_port: int = field(default_factory=free_port)
    trackdrive: Process | None = None
    relays: list[Process] = field(default_factory=list)
    relay_ports: list[int] = field(default_factory=list)
    proxy: Process | None = None
    proxy_port: int = 0

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    def relay_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.relay_ports[index]}"

    def env(self) -> dict[str, str]:
        return {**SECRETS, "RELAY_DATABASE_URL": self.database_url,
                "RELAY_MAPPINGS_DIR": str(self.workdir / "mappings"),
                "TRACKDRIVE_BASE_URL": self.sandbox_url, "RELAY_LEASE_SECONDS": str(self.lease_s),
                "RELAY_POLL_INTERVAL": "0.2", "RELAY_RETRY_DELAYS": "1",
                "RELAY_TRUSTED_PROXIES": "127.0.0.1", "RELAY_GRACEFUL_TIMEOUT": "5",
                "RELAY_DRAIN_SECONDS": "0"}

    def start_sandbox(self, *args: str) -> None:
        if not (self.workdir / "mappings").exists():
            shutil.copytree(self.mappings_src, self.workdir / "mappings")
        self.trackdrive = sandbox(self.sandbox_port, self.workdir / "sandbox.log", *args).start()
        self.trackdrive.wait_http(f"{self.sandbox_url}/_sandbox/stats")

    def start_relay(self, workers: int = 2) -> Process:
        index = len(self.relays)
        port = free_port()
        relay = gunicorn(port, self.workdir / f"relay{index}.log", self.env(), workers=workers).start()
        self.relays.append(relay)
        self.relay_ports.append(port)
        relay.wait_http(f"http://127.0.0.1:{port}/healthz")
        return relay

    def start_proxy(self, binary: str) -> None:
        self.proxy_port = free_port()
        self.proxy = nginx(binary, self.workdir / "nginx", self.proxy_port,
                           (self.relay_ports[0], self.relay_ports[1]))
        self.proxy.start()
        self.proxy.wait_http(f"{self.proxy_url}/healthz")

    def stop(self) -> None:
        for process in (self.proxy, *self.relays, self.trackdrive):
            if process:
                process.stop(timeout_s=15)

    def received(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.sandbox_url}/_sandbox/received", timeout=30).json()

    def sandbox_stats(self) -> dict[str, Any]:
        return requests.get(f"{self.sandbox_url}/_sandbox/stats", timeout=10).json()

    def worker_pids(self, index: int) -> set[int]:
        """The gunicorn workers of one instance (children of its master)."""
        master = self.relays[index].popen.pid  # type: ignore[union-attr]
        return {pid for pid in _all_pids() if _parent_of(pid) == master}

    def logs(self) -> str:
        parts = [process.log()[-4000:] for process in (*self.relays, self.trackdrive, self.proxy)
                 if process]
        return "\n----\n".join(parts)


def accepted_lead_ids(records: list[dict[str, Any]]) -> list[str]:
    """Relay lead ids the sandbox accepted as new leads (a replayed repeat is not one)."""
    return [record["lead_id"] for record in records
            if record["answer"].get("fate") == "accepted" and record.get("lead_id")]


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[1])
