"""Serving the sandbox: a threaded server with a deep listen backlog."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from relay.sandbox.app import sandbox_state

LISTEN_BACKLOG = 1024


class SandboxServer(ThreadedWSGIServer):
    # Werkzeug's default backlog (128) refuses connections once ~150 slow requests pile up.
    request_queue_size = LISTEN_BACKLOG


class SandboxRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The query carries lead_token: log the path alone.
        self.log("info", '"%s %s" %s', self.command, urlsplit(self.path).path, code)


def make_sandbox_server(app: Flask, host: str = "127.0.0.1", port: int = 0) -> SandboxServer:
    return SandboxServer(host, port, app, handler=SandboxRequestHandler)


@dataclass
class RunningSandbox:
    app: Flask
    server: SandboxServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{_text(host)}:{port}"

    def close(self) -> None:
        sandbox_state(self.app).closing.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve_in_thread(app: Flask, host: str = "127.0.0.1", port: int = 0) -> RunningSandbox:
    server = make_sandbox_server(app, host, port)
    thread = threading.Thread(target=server.serve_forever, name="relay-sandbox", daemon=True)
    thread.start()
    return RunningSandbox(app, server, thread)


def _text(host: str | bytes | bytearray) -> str:
    """A socket address's host, which the socket module types as str or bytes."""
    return host.decode() if isinstance(host, (bytes, bytearray)) else host
