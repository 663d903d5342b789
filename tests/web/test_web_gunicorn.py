"""A real gunicorn (the project's gunicorn.conf.py) receiving over HTTP and delivering to a local Trackdrive."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar, Iterator

import pytest
import requests

from relay.store import open_store
from tests.support.procs import ROOT, VENV_BIN, Process, free_port
from tests.web.test_web_real_mapping import ENV as MAPPING_ENV
from tests.web.test_web_real_mapping import write_mappings
from tests.web.web_fakes import recorded

WAIT_S = 30.0  # an upper bound for slow machines, not a measurement


class FakeTrackdrive(BaseHTTPRequestHandler):
    calls: ClassVar[list[dict]] = []
    called = threading.Event()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        FakeTrackdrive.calls.append({"path": self.path, "body": self.rfile.read(length).decode()})
        FakeTrackdrive.called.set()
        payload = b'{"success": true, "status": 200}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def trackdrive() -> Iterator[str]:
    FakeTrackdrive.calls = []
    FakeTrackdrive.called = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTrackdrive)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def relay_env(tmp_path: Path, port: int, trackdrive_url: str) -> dict[str, str]:
    return {**MAPPING_ENV, "RELAY_BIND": f"127.0.0.1:{port}", "RELAY_WORKERS": "2",
            "RELAY_DATABASE_URL": f"sqlite:///{tmp_path / 'relay.db'}",
            "RELAY_MAPPINGS_DIR": str(write_mappings(tmp_path / "mappings")),
            "TRACKDRIVE_BASE_URL": trackdrive_url, "RELAY_POLL_INTERVAL": "0.2",
            "RELAY_RETRY_DELAYS": "1", "RELAY_GRACEFUL_TIMEOUT": "5"}


def wait_for_status(db_url: str, lead_id: str, wanted: str) -> str:
    store = open_store(db_url, synchronous="NORMAL")
    try:
        deadline = time.monotonic() + WAIT_S
        status = ""
        while time.monotonic() < deadline:
            status = store.get(lead_id).status
            if status == wanted:
                break
            time.sleep(0.1)
        return status
    finally:
        store.close()


def post_unbounce(base: str) -> requests.Response:
    sample = recorded("unbounce_form_submit.http")
    return requests.post(f"{base}/hooks/unbounce", data=sample.body,
                         headers={"Content-Type": sample.content_type, "X-Request-ID": "over-http-1"},
                         timeout=WAIT_S)


@pytest.mark.parametrize("argv", [
    [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py")],
    [str(VENV_BIN / "relay"), "serve"],
], ids=["gunicorn", "relay-serve"])
def test_real_server_receives_over_http_and_delivers(tmp_path: Path, trackdrive: str, argv: list[str]):
    port = free_port()
    env = relay_env(tmp_path, port, trackdrive)
    base = f"http://127.0.0.1:{port}"
    server = Process(argv, log_path=tmp_path / "gunicorn.log", env=env)
    with server:
        server.wait_http(f"{base}/healthz", timeout_s=WAIT_S)

        response = post_unbounce(base)
        assert response.status_code == 202, (response.text, server.log())
        assert response.headers["X-Request-ID"] == "over-http-1"
        lead_id = response.json()["lead_id"]

        assert FakeTrackdrive.called.wait(WAIT_S), server.log()
        sent = json.loads(FakeTrackdrive.calls[0]["body"]) if FakeTrackdrive.calls[0]["body"].startswith("{") \
            else FakeTrackdrive.calls[0]["body"]
        assert "2105550136" in json.dumps(sent) + FakeTrackdrive.calls[0]["path"]
        assert wait_for_status(env["RELAY_DATABASE_URL"], lead_id, "delivered") == "delivered", server.log()

        missing = requests.post(f"{base}/hooks/nobody", json={}, timeout=WAIT_S)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "unknown_source"

        def chunks() -> Iterator[bytes]:
            for _ in range(40):
                yield b"x" * 8192

        too_big = requests.post(f"{base}/hooks/unbounce", data=chunks(), timeout=WAIT_S,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert too_big.status_code == 413
        assert too_big.json()["error"]["limit"] == 256 * 1024

        assert server.stop(timeout_s=WAIT_S) == 0, server.log()
