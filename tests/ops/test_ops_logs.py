"""One JSON line per request and per delivery attempt; nothing personal or secret in any of them."""
from __future__ import annotations

import io
import json
import logging
import os
import threading

import pytest

from relay import logs, pii
from tests.web.web_fakes import ENV


@pytest.fixture
def lines():
    """Capture what the relay logs, formatted exactly as in production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(previous_level)


def request_lines(entries: list[dict]) -> list[dict]:
    return [entry for entry in entries if entry["logger"] == "relay.request"]


def test_one_line_per_hook_request_with_its_fields(client, lines):
    response = client.post("/hooks/acme", json={"phone": "+15125550147"}, headers={"X-Request-ID": "vendor-42"})
    [entry] = request_lines(lines())
    assert entry["method"] == "POST" and entry["path"] == "/hooks/acme"
    assert entry["status"] == 202 and entry["outcome"] == "queued" and entry["source"] == "acme"
    assert entry["lead_id"] == response.get_json()["lead_id"]
    assert entry["request_id"] == "vendor-42" == response.headers["X-Request-ID"]
    assert entry["duration_ms"] >= 0 and entry["client_addr"] == "127.0.0.1"
    assert entry["level"] == "info"


def test_an_unsafe_request_id_is_replaced(client, lines):
    response = client.post("/hooks/acme", json={}, headers={"X-Request-ID": "bad id\" with spaces"})
    [entry] = request_lines(lines())
    assert entry["request_id"] == response.headers["X-Request-ID"] != "bad id\" with spaces"
    assert len(response.headers["X-Request-ID"]) <= 128


def test_refusals_are_logged_with_their_outcome(client, lines):
    client.post("/hooks/guarded", json={"phone": "+15125550147"}, headers={"X-Token": "wrong"})
    [entry] = request_lines(lines())
    assert (entry["status"], entry["outcome"]) == (401, "unauthorized")


def test_probes_are_logged_at_debug_only(client, lines):
    client.get("/healthz")
    [entry] = request_lines(lines())
    assert entry["level"] == "debug"


def test_mapping_secrets_are_registered_when_the_app_starts(client, lines):
    # The fake source references ACME_LEAD_TOKEN; its value must never be written.
    logging.getLogger("relay.test").warning("calling with %s", ENV["ACME_LEAD_TOKEN"])
    text = json.dumps(lines())
    assert ENV["ACME_LEAD_TOKEN"] not in text and "[secret]" in text


@pytest.mark.parametrize("form", [
    lambda s: s,
    lambda s: json.dumps(s)[1:-1],
    lambda s: s.replace("/", "%2F").replace("+", "%2B").replace("=", "%3D"),
])
def test_secrets_are_masked_in_every_spelling(form):
    secret = 'abc/def+ghi="jkl"=='
    pii.register_secret(secret)
    formatted = logs.JsonFormatter().format(logging.makeLogRecord({"msg": f"url ?k={form(secret)}"}))
    assert form(secret) not in formatted and secret not in formatted


def test_log_lines_mask_international_phones_idn_emails_and_names():
    record = logging.makeLogRecord({"msg": "lead from %s", "args": ("josé@exämple.com",),
                                    "query": "first_name=Jo&phone=%2B44+20+7946+0958"})
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["msg"] == "lead from j***@exämple.com"
    assert entry["query"] == "first_name=J***&phone=***58"


def test_the_timestamp_is_never_masked():
    record = logging.makeLogRecord({"msg": "x", "created": 1_700_000_000.5, "msecs": 500.0})
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["ts"] == "2023-11-14T22:13:20.500Z"


def test_logging_config_routes_gunicorn_through_json():
    config = logs.logging_config("info")
    assert config["loggers"]["gunicorn.access"]["level"] == "CRITICAL"  # the relay logs requests itself
    assert logs.logging_config("info", access_log=True)["loggers"]["gunicorn.access"]["propagate"] is True
    assert config["formatters"]["json"]["()"] == "relay.logs.JsonFormatter"


def batching_logger(stream: io.StringIO) -> tuple[logging.Logger, logs.BatchingStreamHandler]:
    handler = logs.BatchingStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(f"relay.test.batching.{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger, handler


def test_info_lines_wait_for_their_batch_and_a_warning_takes_them_along(monkeypatch) -> None:
    monkeypatch.setattr(logs, "BATCH_S", 60.0)  # no timed batch lands while the test looks
    stream = io.StringIO()
    logger, handler = batching_logger(stream)
    logger.info("one")
    logger.info("two")
    assert stream.getvalue() == ""  # held for at most logs.BATCH_S
    logger.warning("three")
    assert stream.getvalue().splitlines() == ["INFO one", "INFO two", "WARNING three"]
    logger.info("four")
    handler.close()  # as logging.shutdown() does at exit
    assert stream.getvalue().splitlines()[-1] == "INFO four"


def test_a_batch_is_written_without_a_warning() -> None:
    stream = io.StringIO()
    logger, _ = batching_logger(stream)
    logger.info("alone")
    done = threading.Event()
    for _ in range(int(10 / 0.01)):  # an upper bound for a slow machine, not a measurement
        if stream.getvalue():
            break
        done.wait(0.01)
    assert stream.getvalue() == "INFO alone\n"


def test_a_forked_child_does_not_write_its_parents_lines_again(tmp_path) -> None:
    path = tmp_path / "log.txt"
    with path.open("w", buffering=1) as stream:
        logger, handler = batching_logger(stream)  # type: ignore[arg-type]
        logger.info("parent")
        pid = os.fork()
        if pid == 0:
            logger.info("child")
            handler.flush()
            os._exit(0)
        os.waitpid(pid, 0)
        handler.close()  # flushes
    assert sorted(path.read_text().splitlines()) == ["INFO child", "INFO parent"]
