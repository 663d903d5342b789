from __future__ import annotations

import pytest

from relay.delivery.outcome import (
    MAX_BODY_BYTES,
    Delivered,
    Failed,
    RetryLater,
    classify,
    parse_retry_after,
    truncate_body,
)

NOW = 1_700_000_000.0


@pytest.mark.parametrize("status, body, expected", [
    (200, '{"success": true, "lead": {"id": 1}}', Delivered),
    (201, '{"success": true}', Delivered),
    (201, "", Delivered),
    (204, "not json", Delivered),
    (201, '{"success": false, "errors": ["dnc"]}', Failed),
    (422, '{"errors": ["caller_id is invalid"]}', Failed),
    (400, "", Failed),
    (404, "", Failed),
    (401, "", Failed),
    (403, "", Failed),
    (302, "", Failed),
    (408, "", RetryLater),
    (429, "", RetryLater),
    (500, "", RetryLater),
    (502, "<html>bad gateway</html>", RetryLater),
    (503, "", RetryLater),
    (504, "", RetryLater),
])
def test_classify_table(status: int, body: str, expected: type) -> None:
    outcome = classify(status, body, {}, now=lambda: NOW)
    assert isinstance(outcome, expected)
    assert outcome.status == status
    assert outcome.body == body


@pytest.mark.parametrize("status, body, reason", [
    (201, '{"success": false}', "rejected"),
    (422, "{}", "rejected"),
    (401, "", "unauthorized"),
    (403, "", "unauthorized"),
    (429, "", "rate_limited"),
    (408, "", "request_timeout"),
    (503, "", "server_error"),
])
def test_classify_reasons(status: int, body: str, reason: str) -> None:
    assert classify(status, body, {}).reason == reason


def test_success_flag_must_be_literally_false_to_reject() -> None:
    assert isinstance(classify(200, '{"success": "false"}', {}), Delivered)
    assert isinstance(classify(200, '[{"success": false}]', {}), Delivered)


def test_retry_after_seconds_from_any_header_case() -> None:
    outcome = classify(429, "", {"retry-after": "12"}, now=lambda: NOW)
    assert outcome == RetryLater("rate_limited", 429, "", 12.0)


def test_retry_after_http_date() -> None:
    outcome = classify(503, "", {"Retry-After": "Tue, 14 Nov 2023 22:14:20 GMT"}, now=lambda: NOW)
    assert outcome.retry_after_s == pytest.approx(1_700_000_060.0 - NOW)


@pytest.mark.parametrize("value, expected", [
    (None, None), ("", None), ("soon", None), ("-5", 0.0), ("2.5", 2.5),
    ("Tue, 14 Nov 2023 22:12:00 GMT", 0.0),  # in the past
])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_bodies_are_truncated_to_64_kib_on_a_character_boundary() -> None:
    body = "é" * MAX_BODY_BYTES
    outcome = classify(500, body, {})
    assert len(outcome.body.encode()) <= MAX_BODY_BYTES
    assert outcome.body == "é" * (MAX_BODY_BYTES // 2)
    assert truncate_body("short") == "short"
