from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

import pytest

from relay.delivery.client import USER_AGENT, TrackdriveClient
from relay.delivery.outcome import Delivered, Failed, RetryLater
from relay.mapping.model import TrackdriveCall, caller_path
from relay.sandbox.server import RunningSandbox

from delivery_fakes import TOKEN, TOKEN_ENV, create_call, received, set_behaviour


def client_for(sandbox: RunningSandbox, **kwargs: object) -> TrackdriveClient:
    return TrackdriveClient(sandbox.url, env={TOKEN_ENV: TOKEN}, **kwargs)


def test_delivered_with_identifying_headers(sandbox: RunningSandbox) -> None:
    outcome = client_for(sandbox).send(create_call(assign_trackdrive_number=True), lead_id="L1")
    assert isinstance(outcome, Delivered)
    assert outcome.status == 201
    assert '"trackdrive_number_plain"' in outcome.body
    [record] = received(sandbox)
    assert record["headers"]["Idempotency-Key"] == "L1"
    assert record["headers"]["X-Relay-Lead-Id"] == "L1"
    assert record["headers"]["User-Agent"] == USER_AGENT
    assert record["headers"]["Content-Type"] == "application/json"
    assert record["query"] == {"lead_token": "***"}
    assert record["body"]["caller_id"] == "+15551234567"


def test_the_secret_is_substituted_at_send_time(sandbox: RunningSandbox) -> None:
    set_behaviour(sandbox, tokens=[TOKEN])
    assert isinstance(client_for(sandbox).send(create_call(), lead_id="L1"), Delivered)
    other = TrackdriveClient(sandbox.url, env={TOKEN_ENV: "another-token"})
    outcome = other.send(create_call(), lead_id="L2")
    assert outcome == Failed("unauthorized", 401, outcome.body)


def test_caller_calls_put_the_caller_id_in_the_path(sandbox: RunningSandbox) -> None:
    call = TrackdriveCall(action="caller_opt_out", method="PUT",
                          path=caller_path("caller_opt_out", "+15551234567"),
                          query={"lead_token": "${%s}" % TOKEN_ENV}, body={},
                          secrets={"lead_token": TOKEN_ENV})
    assert isinstance(client_for(sandbox).send(call, lead_id="L1"), Delivered)
    assert received(sandbox)[0]["path"] == "/api/v1/leads/+15551234567/caller_opt_out"


def test_rejected_by_validation(sandbox: RunningSandbox) -> None:
    outcome = client_for(sandbox).send(create_call(caller_id="555"), lead_id="L1")
    assert isinstance(outcome, Failed)
    assert (outcome.reason, outcome.status) == ("rejected", 422)
    assert "caller_id" in outcome.body


def test_missing_secret_waits_for_the_operator(sandbox: RunningSandbox) -> None:
    outcome = TrackdriveClient(sandbox.url, env={}).send(create_call(), lead_id="L1")
    assert isinstance(outcome, RetryLater)
    assert outcome.reason == "missing_secret"
    assert TOKEN_ENV in outcome.body
    assert received(sandbox) == []


def test_base_url_from_an_unset_variable_is_a_missing_secret(sandbox: RunningSandbox) -> None:
    call = TrackdriveCall.from_dict({**create_call().to_dict(), "base_url": "${TD_BASE_URL_TEST}"})
    outcome = client_for(sandbox).send(call, lead_id="L1")
    assert isinstance(outcome, RetryLater) and outcome.reason == "missing_secret"


def test_server_error_is_retried(sandbox: RunningSandbox) -> None:
    set_behaviour(sandbox, fail_rate=1.0)
    outcome = client_for(sandbox).send(create_call(), lead_id="L1")
    assert isinstance(outcome, RetryLater)
    assert (outcome.reason, outcome.status) == ("server_error", 503)


def test_429_carries_retry_after(sandbox: RunningSandbox) -> None:
    set_behaviour(sandbox, rate_429=1.0, retry_after=42)
    outcome = client_for(sandbox).send(create_call(), lead_id="L1")
    assert outcome == RetryLater("rate_limited", 429, outcome.body, 42.0)


def test_read_timeout(sandbox: RunningSandbox) -> None:
    set_behaviour(sandbox, timeout_rate=1.0, timeout_s=30)
    outcome = client_for(sandbox, read_timeout_s=0.3).send(create_call(), lead_id="L1")
    assert isinstance(outcome, RetryLater)
    assert outcome.reason == "timeout"
    assert TOKEN not in outcome.body and "lead_token" not in outcome.body


def test_per_call_timeout_overrides_the_read_timeout(sandbox: RunningSandbox) -> None:
    set_behaviour(sandbox, timeout_rate=1.0, timeout_s=30)
    outcome = client_for(sandbox, read_timeout_s=60).send(create_call(), lead_id="L1", timeout_s=0.3)
    assert isinstance(outcome, RetryLater) and outcome.reason == "timeout"


def test_dropped_connection(sandbox: RunningSandbox) -> None:
    set_behaviour(sandbox, drop_rate=1.0)
    outcome = client_for(sandbox).send(create_call(), lead_id="L1")
    assert isinstance(outcome, RetryLater)
    assert outcome.reason == "connection_error"
    assert TOKEN not in outcome.body


def test_nothing_listening_is_a_connection_error() -> None:
    outcome = TrackdriveClient("http://127.0.0.1:9", env={TOKEN_ENV: TOKEN}).send(
        create_call(), lead_id="L1")
    assert isinstance(outcome, RetryLater) and outcome.reason == "connection_error"
    assert "9" in outcome.body and TOKEN not in outcome.body and "/api/v1" not in outcome.body


def test_invalid_base_url_fails() -> None:
    outcome = TrackdriveClient("not a url", env={TOKEN_ENV: TOKEN}).send(create_call(), lead_id="L1")
    assert isinstance(outcome, Failed) and outcome.reason == "invalid_url"


def test_a_malformed_call_is_failed_not_raised(sandbox: RunningSandbox) -> None:
    call = TrackdriveCall(action="create_lead", method="POST", path="/api/v1/leads",
                          query=None, body={}, secrets={})  # type: ignore[arg-type]
    outcome = client_for(sandbox).send(call, lead_id="L1")
    assert isinstance(outcome, Failed) and outcome.reason == "bad_call"


def test_echoed_secrets_are_masked_in_the_stored_body(sandbox: RunningSandbox) -> None:
    set_behaviour(sandbox, tokens=["other"])
    call = TrackdriveCall.from_dict({**create_call().to_dict(),
                                     "body": {"caller_id": "x", "note": "${%s}" % TOKEN_ENV},
                                     "secrets": {"lead_token": TOKEN_ENV}})
    outcome = client_for(sandbox).send(call, lead_id="L1")
    assert TOKEN not in outcome.body


def test_secrets_never_reach_logs(sandbox: RunningSandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = client_for(sandbox, read_timeout_s=0.3)
    client.send(create_call(), lead_id="L1")
    set_behaviour(sandbox, drop_rate=1.0)
    client.send(create_call(), lead_id="L2")
    assert TOKEN not in caplog.text


class ScriptedTrackdrive(ThreadingHTTPServer):
    """Answers every request with one fixed reply and notes each request and each connection."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.reply = (status, body, headers)
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.connections = 0
        super().__init__(("127.0.0.1", 0), ScriptedHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Trackdrive does
    server: ScriptedTrackdrive

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.requests.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
        status, body, headers = self.server.reply
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT = do_GET = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedTrackdrive]]:
    servers: list[ScriptedTrackdrive] = []

    def start(status: int = 201, body: bytes = b'{"success": true}',
              headers: dict[str, str] | None = None) -> ScriptedTrackdrive:
        server = ScriptedTrackdrive(status, body, headers or {"Content-Type": "application/json"})
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_redirect_is_not_followed(scripted: Callable[..., ScriptedTrackdrive]) -> None:
    server = scripted(302, b"", {"Location": "http://127.0.0.1:9/elsewhere"})
    outcome = TrackdriveClient(server.url, env={TOKEN_ENV: TOKEN}).send(create_call(), lead_id="L1")
    assert outcome == Failed("redirected", 302, "")
    assert len(server.requests) == 1


def test_connections_are_kept_and_reused(scripted: Callable[..., ScriptedTrackdrive]) -> None:
    server = scripted()
    client = TrackdriveClient(server.url, env={TOKEN_ENV: TOKEN})
    outcomes = [client.send(create_call(), lead_id=f"L{i}") for i in range(3)]
    assert all(isinstance(outcome, Delivered) for outcome in outcomes)
    assert server.connections == 1


def test_the_body_is_json_and_the_token_is_encoded_in_the_query(
        scripted: Callable[..., ScriptedTrackdrive]) -> None:
    server = scripted()
    client = TrackdriveClient(server.url, env={TOKEN_ENV: "a b&c"})
    assert isinstance(client.send(create_call(note="café"), lead_id="L1"), Delivered)
    [(method, target, headers, body)] = server.requests
    assert (method, target) == ("POST", "/api/v1/leads?lead_token=a+b%26c")
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["note"] == "café"


def test_a_call_without_a_body_sends_none(scripted: Callable[..., ScriptedTrackdrive]) -> None:
    server = scripted()
    call = TrackdriveCall(action="caller_opt_out", method="PUT",
                          path=caller_path("caller_opt_out", "+15551234567"),
                          query={"lead_token": "${%s}" % TOKEN_ENV}, body={},
                          secrets={"lead_token": TOKEN_ENV})
    assert isinstance(TrackdriveClient(server.url, env={TOKEN_ENV: TOKEN}).send(call, lead_id="L1"),
                      Delivered)
    [(method, _, headers, body)] = server.requests
    assert (method, body) == ("PUT", b"")
    assert "Content-Type" not in headers


def test_the_answer_is_read_in_its_declared_charset(scripted: Callable[..., ScriptedTrackdrive]) -> None:
    server = scripted(422, '{"error": "número inválido"}'.encode("latin-1"),
                      {"Content-Type": "application/json; charset=ISO-8859-1"})
    outcome = TrackdriveClient(server.url, env={TOKEN_ENV: TOKEN}).send(create_call(), lead_id="L1")
    assert outcome == Failed("rejected", 422, '{"error": "número inválido"}')
