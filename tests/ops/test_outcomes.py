"""One outcome table: every error code and lead status has its answer and its metric label."""
from __future__ import annotations

import inspect

import pytest
from flask import Flask, Response

from relay import errors, metrics, outcomes
from relay.store.base import STATUSES, Lead
from relay.web import observe
from relay.web.answers import lead_answer
from relay.web.error_handlers import HTTP_CODES


def relay_error_classes() -> list[type[errors.RelayError]]:
    found = {cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, errors.RelayError)}
    pending = list(found)
    while pending:  # subclasses defined elsewhere count too: their codes reach the same table
        for sub in pending.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return sorted(found, key=lambda cls: cls.code)


@pytest.mark.parametrize("error_class", relay_error_classes(), ids=lambda cls: cls.__name__)
def test_every_relay_error_code_is_in_the_table(error_class: type[errors.RelayError]) -> None:
    outcome = outcomes.for_code(error_class.code)
    assert outcome is not None, f"{error_class.__name__}.code {error_class.code!r} is missing from relay.outcomes"
    assert outcome.http_status == error_class.status
    assert outcome.metric in metrics.REQUEST_OUTCOMES


@pytest.mark.parametrize(("status", "code"), sorted(HTTP_CODES.items()))
def test_codes_given_to_werkzeug_errors_are_in_the_table(status: int, code: str) -> None:
    outcome = outcomes.for_code(code)
    assert outcome is not None and outcome.http_status == status


@pytest.mark.parametrize("status", sorted(set(STATUSES) | {"fetching"}))
def test_every_lead_status_has_an_answer_and_a_label(status: str) -> None:
    outcome = outcomes.for_status(status)
    assert outcome is not None and outcome.lead_status == status
    assert outcome.http_status in (200, 202, 422)
    assert outcome.metric in metrics.REQUEST_OUTCOMES


def test_the_table_keeps_the_published_labels() -> None:
    # Alerts select on these (docs/operations.md): renaming one silently breaks them.
    assert set(metrics.REQUEST_OUTCOMES) == {
        "queued", "fetching", "rejected", "dropped", "duplicate", "unauthorized", "forbidden", "too_large",
        "malformed", "unsupported", "rate_limited", "unavailable", "unknown_source", "error"}


def test_a_lead_waiting_for_a_fetch_is_answered_like_a_queued_one() -> None:
    assert outcomes.answer_status("fetching") == outcomes.answer_status("queued") == 202
    assert set(outcomes.PENDING_STATUSES) == {"queued", "fetching", "retry"}


def test_an_unknown_status_has_no_answer() -> None:
    with pytest.raises(KeyError):
        outcomes.answer_status("lost")
    assert outcomes.for_status("unauthorized") is None and outcomes.for_code("queued") is None


def lead(status: str) -> Lead:
    return Lead(id="L1", source="acme", status=status, received_at=0.0, method="POST", content_type="",
                query="", headers={}, body=b"", client_addr="", call=None, error=None, mapping_version="v1",
                dedupe_key=None, attempts=0, next_attempt_at=None, lease_owner=None, lease_until=None,
                response_status=None, response_body=None, delivered_at=None, updated_at=0.0)


@pytest.mark.parametrize("status", sorted(set(STATUSES) | {"fetching"}))
def test_the_answer_and_the_metric_agree_with_the_table(status: str) -> None:
    with Flask(__name__).app_context():
        response = lead_answer(lead(status))
        answer = observe.answer_body(response)
        assert response.status_code == outcomes.answer_status(status)
        assert observe.request_outcome(response, answer) == outcomes.OUTCOMES[status].metric
        duplicate = lead_answer(lead(status), duplicate=True)
        assert observe.request_outcome(duplicate, observe.answer_body(duplicate)) == "duplicate"


@pytest.mark.parametrize(("code", "http_status", "label"), [
    ("payload_too_large", 413, "too_large"), ("store_unavailable", 503, "unavailable"),
    ("not_found", 404, "unknown_source"), ("no_such_code", 400, "error"), ("http_408", 408, "malformed"),
    ("internal_error", 500, "error"),
])
def test_error_answers_are_labelled_by_their_code(code: str, http_status: int, label: str) -> None:
    with Flask(__name__).app_context():
        response = Response('{"error": {"code": "%s", "message": "m"}}' % code, status=http_status,
                            content_type="application/json")
        assert observe.request_outcome(response, observe.answer_body(response)) == label


def test_removed_codes_are_gone() -> None:
    assert not hasattr(errors, "Draining")
    assert "draining" not in outcomes.OUTCOMES and "circuit_open" not in outcomes.OUTCOMES
