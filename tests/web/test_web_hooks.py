"""``/hooks/<source>``: persist, then answer by outcome."""
from __future__ import annotations

import json

import pytest

from relay.delivery.outcome import Delivered, Failed, RetryLater
from relay.errors import StoreUnavailable
from relay.mapping.inbound import IdempotencyKey
from relay.mapping.model import MASK, InboundSettings, Problem, RateLimit, TokenAuth
from relay.web.body import DRAIN_BYTES
from tests.web.web_fakes import FakeDispatcher, FakeSource


def test_unknown_source_is_404(client):
    response = client.post("/hooks/nobody", json={"phone": "1"})
    assert response.status_code == 404
    assert response.get_json()["error"] == {"code": "unknown_source", "message": "no source named 'nobody'",
                                            "source": "nobody"}


def test_source_with_broken_mapping_is_503(make_app):
    problem = Problem(file="mappings/broken.yaml", line=3, column=1, message="bad")
    response = make_app(problems=(problem,)).test_client().post("/hooks/broken", json={})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "source_misconfigured"


def test_missing_secret_is_503_naming_only_the_variable(make_app, acme, store):
    env = {"ACME_LEAD_TOKEN": ""}
    response = make_app(acme, env=env).test_client().post("/hooks/acme", json={"phone": "1"})
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "source_misconfigured"
    assert error["variable"] == "ACME_LEAD_TOKEN"
    assert store.list() == []


def test_missing_inbound_secret_fails_closed(make_app, store):
    guarded = FakeSource("guarded", inbound=InboundSettings(
        token=TokenAuth(secret_envs=("UNSET_TOKEN",), header="X-Api-Key")))
    response = make_app(guarded).test_client().post("/hooks/guarded", json={"phone": "1"})
    assert response.status_code == 503
    assert response.get_json()["error"]["variable"] == "UNSET_TOKEN"
    assert store.list() == []


def test_queued_lead_is_stored_answered_202_and_submitted(client, store, dispatcher):
    response = client.post("/hooks/acme", json={"phone": "+15125550147"},
                           headers={"X-Request-ID": "req-1", "User-Agent": "vendor/1", "Cookie": "a=b"})
    assert response.status_code == 202
    body = response.get_json()
    assert body == {"lead_id": body["lead_id"], "status": "queued", "source": "acme"}
    lead = store.get(body["lead_id"])
    assert lead.status == "queued"
    assert lead.call["body"]["lead_token"] == "${ACME_LEAD_TOKEN}"
    assert json.loads(lead.body) == {"phone": "+15125550147"}
    assert lead.request_id == "req-1"
    assert lead.headers == {"Content-Type": "application/json", "User-Agent": "vendor/1",
                            "X-Request-ID": "req-1"}
    assert dispatcher.submitted == [lead.id]
    assert response.headers["X-Request-ID"] == "req-1"


def test_refusal_is_stored_and_answered_422_with_field_paths_rule(client, store, dispatcher):
    response = client.post("/hooks/acme", json={"name": "no phone"})
    assert response.status_code == 422
    body = response.get_json()
    assert body["status"] == "rejected"
    assert body["error"]["code"] == "lead_refused"
    assert body["error"]["field"] == "caller_id"
    assert body["error"]["rule"] == "required"
    assert body["error"]["paths"] == ["$.phone"]
    assert store.get(body["lead_id"]).status == "rejected"
    assert dispatcher.submitted == []


def test_drop_is_stored_and_answered_200(client, store, dispatcher):
    response = client.post("/hooks/acme", json={"phone": "1", "email": "qa@example.test"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "dropped"
    assert body["reason"] == "vendor test lead"
    assert store.get(body["lead_id"]).status == "dropped"
    assert dispatcher.submitted == []


def test_malformed_body_is_400_and_not_stored(client, store):
    response = client.post("/hooks/acme", data=b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_body"
    assert store.list() == []


def test_unsupported_media_type_is_415(client, store):
    response = client.post("/hooks/acme", data=b"%PDF-1.4", content_type="application/pdf")
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"
    assert store.list() == []


def test_parser_crash_keeps_the_request_for_replay(make_app, store, caplog):
    source = FakeSource("acme", parse_error=KeyError("bug"))
    response = make_app(source).test_client().post("/hooks/acme", json={"phone": "1"})
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"]["rule"] == "mapping_error" and body["kept"] is True
    [lead] = store.list(status="rejected")
    assert lead.id == body["lead_id"] and lead.body == b'{"phone": "1"}'
    [line] = [r for r in caplog.records if getattr(r, "event", "") == "mapping_crash"]
    assert line.lead_id == lead.id and line.exc_info and line.exc_info[0] is KeyError


def test_mapping_crash_is_logged_with_its_traceback_and_kept_as_rejected(make_app, store, caplog):
    source = FakeSource("acme", map_error=ZeroDivisionError("boom"))
    response = make_app(source).test_client().post("/hooks/acme", json={"phone": "1"})
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"]["rule"] == "mapping_error" and body["kept"] is True
    assert "kept for replay" in body["error"]["message"]
    [lead] = store.list(status="rejected")
    [line] = [r for r in caplog.records if getattr(r, "event", "") == "mapping_crash"]
    assert line.lead_id == lead.id == body["lead_id"]
    assert line.exc_info[0] is ZeroDivisionError


class BrokenStore:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def insert(self, received):
        raise self.error

    def insert_batch(self, received):
        raise self.error


@pytest.mark.parametrize("error", [StoreUnavailable("disk full"), OSError("I/O error")])
def test_store_failure_is_503_never_2xx(make_app, acme, dispatcher, error):
    client = make_app(acme, outbox=BrokenStore(error)).test_client()
    response = client.post("/hooks/acme", json={"phone": "1"})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "store_unavailable"
    assert dispatcher.submitted == []


def test_get_with_query_string_is_a_lead(client, store):
    response = client.get("/hooks/acme?phone=9565550149&first_name=Gloria")
    assert response.status_code == 202
    lead = store.get(response.get_json()["lead_id"])
    assert lead.method == "GET"
    assert lead.query == "phone=9565550149&first_name=Gloria"


def test_put_is_accepted(client):
    assert client.put("/hooks/acme", json={"phone": "1"}).status_code == 202


# --- body limits ---

def limited(limit: int) -> FakeSource:
    return FakeSource("small", inbound=InboundSettings(max_body_bytes=limit))


def test_declared_length_over_limit_is_413(make_app, store):
    response = make_app(limited(10)).test_client().post("/hooks/small", data=b"x" * 11,
                                                        content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"] == {"code": "payload_too_large", "limit": 10,
                                            "message": "request body exceeds the limit of 10 bytes"}
    assert store.list() == []


def test_body_exactly_at_limit_is_read(make_app):
    body = json.dumps({"phone": "1"}).encode()
    response = make_app(limited(len(body))).test_client().post("/hooks/small", data=body,
                                                               content_type="application/json")
    assert response.status_code == 202


class CountingStream:
    """A chunked upload: no length declared, bytes handed out in pieces."""

    def __init__(self, total: int, chunk: int = 1000) -> None:
        self.left = total
        self.chunk = chunk
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        size = self.chunk if size < 0 else min(size, self.chunk)
        size = min(size, self.left)
        self.left -= size
        self.read_bytes += size
        return b"x" * size


def test_chunked_upload_over_limit_is_413_without_reading_it_all(make_app, store):
    """Only a bounded drain is read past the limit (so the client sees the 413), never the whole upload."""
    app = make_app(limited(5000))
    stream = CountingStream(100_000_000)
    environ = {"wsgi.input": stream, "wsgi.input_terminated": True, "CONTENT_TYPE": "application/json",
               "HTTP_TRANSFER_ENCODING": "chunked"}
    response = app.test_client().post("/hooks/small", environ_overrides=environ)
    assert response.status_code == 413
    assert stream.read_bytes <= 5001 + DRAIN_BYTES < 100_000_000
    assert store.list() == []


def test_body_shorter_than_declared_is_400(make_app):
    app = make_app(limited(5000))
    stream = CountingStream(10)
    environ = {"wsgi.input": stream, "CONTENT_LENGTH": "100", "CONTENT_TYPE": "application/json"}
    response = app.test_client().post("/hooks/small", environ_overrides=environ)
    assert response.status_code == 400


# --- dedupe ---

def deduping() -> FakeSource:
    return FakeSource("dedupe", inbound=InboundSettings(idempotency_window_s=3600))


def test_repeat_gets_the_first_answer_marked_duplicate_and_is_not_resubmitted(make_app, dispatcher, store):
    client = make_app(deduping()).test_client()
    first = client.post("/hooks/dedupe", json={"phone": "1", "event_id": "evt-1"})
    repeat = client.post("/hooks/dedupe", json={"phone": "1", "event_id": "evt-1"})
    assert first.status_code == repeat.status_code == 202
    assert repeat.get_json() == {**first.get_json(), "duplicate": True}
    assert dispatcher.submitted == [first.get_json()["lead_id"]]
    assert len(store.list()) == 1


def test_repeat_by_idempotency_key_header(make_app, store):
    client = make_app(deduping()).test_client()
    for _ in range(2):
        client.post("/hooks/dedupe", json={"phone": "1"}, headers={"Idempotency-Key": "k-9"})
    assert len(store.list()) == 1


def test_a_refused_lead_does_not_block_the_corrected_resend(make_app, dispatcher, store):
    client = make_app(deduping()).test_client()
    refused = client.post("/hooks/dedupe", json={"event_id": "evt-2"})  # no phone
    corrected = client.post("/hooks/dedupe", json={"phone": "1", "event_id": "evt-2"})
    assert refused.status_code == 422
    assert corrected.status_code == 202 and "duplicate" not in corrected.get_json()
    assert dispatcher.submitted == [corrected.get_json()["lead_id"]]
    again = client.post("/hooks/dedupe", json={"phone": "1", "event_id": "evt-2"})
    assert again.get_json() == {**corrected.get_json(), "duplicate": True}


def test_a_dropped_lead_does_not_block_a_later_one_with_its_key(make_app, store):
    client = make_app(deduping()).test_client()
    dropped = client.post("/hooks/dedupe", json={"phone": "1", "email": "x@example.test", "event_id": "e"})
    later = client.post("/hooks/dedupe", json={"phone": "1", "event_id": "e"})
    assert dropped.get_json()["status"] == "dropped"
    assert later.status_code == 202 and "duplicate" not in later.get_json()


def test_any_header_may_be_the_dedupe_key(make_app, store):
    source = FakeSource("dedupe", inbound=InboundSettings(idempotency_window_s=3600),
                        idempotency=IdempotencyKey(header="X-Vendor-Event"))
    source.idempotency_key = lambda payload, headers: headers.get("X-Vendor-Event")  # type: ignore[method-assign]
    client = make_app(source).test_client()
    first = client.post("/hooks/dedupe", json={"phone": "1"}, headers={"X-Vendor-Event": "ev-77"})
    repeat = client.post("/hooks/dedupe", json={"phone": "1"}, headers={"X-Vendor-Event": "ev-77"})
    assert repeat.get_json() == {**first.get_json(), "duplicate": True}
    [lead] = store.list()
    assert lead.headers["X-Vendor-Event"] == "ev-77"  # kept, so a replay reads the same key


def test_without_a_window_nothing_is_deduped(client, store):
    for _ in range(2):
        client.post("/hooks/acme", json={"phone": "1", "event_id": "evt-1"})
    assert len(store.list()) == 2


# --- sync mode ---

def sync_source() -> FakeSource:
    return FakeSource("sync", inbound=InboundSettings(mode="sync", sync_deadline_s=0.0))


def test_sync_delivered_answers_with_trackdrive_status_and_body(make_app):
    delivery = FakeDispatcher(Delivered(201, '{"success": true, "id": 7}'))
    response = make_app(sync_source(), delivery=delivery).test_client().post("/hooks/sync", json={"phone": "1"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "delivered"
    assert body["trackdrive"] == {"status": 201, "body": {"success": True, "id": 7}}


def test_sync_failed_answers_200_dead_with_trackdrive_answer(make_app):
    delivery = FakeDispatcher(Failed("rejected", 400, "bad caller id"))
    response = make_app(sync_source(), delivery=delivery).test_client().post("/hooks/sync", json={"phone": "1"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "dead"
    assert response.get_json()["trackdrive"] == {"status": 400, "body": "bad caller id"}


@pytest.mark.parametrize("delivery", [FakeDispatcher(RetryLater("server_error", 502, "")),
                                      FakeDispatcher(None),
                                      FakeDispatcher(completes=False)])
def test_sync_without_a_final_answer_is_202_queued(make_app, delivery):
    response = make_app(sync_source(), delivery=delivery).test_client().post("/hooks/sync", json={"phone": "1"})
    assert response.status_code == 202
    assert response.get_json()["status"] == "queued"


# --- rate limit ---

def test_rate_limit_answers_429_with_retry_after(make_app):
    source = FakeSource("limited", inbound=InboundSettings(rate_limit=RateLimit(per_second=0.001, burst=1)))
    client = make_app(source).test_client()
    assert client.post("/hooks/limited", json={"phone": "1"}).status_code == 202
    response = client.post("/hooks/limited", json={"phone": "1"})
    assert response.status_code == 429
    assert response.get_json()["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1


# --- what is kept ---

def test_token_query_parameter_is_removed_from_stored_query_and_payload(make_app, store):
    source = FakeSource("qt", inbound=InboundSettings(token=TokenAuth(secret_envs=("ACME_TOKEN",),
                                                                      query="api_key")))
    client = make_app(source).test_client()
    response = client.get("/hooks/qt?phone=1&api_key=token-current&x=a%20b")
    assert response.status_code == 202
    lead = store.get(response.get_json()["lead_id"])
    assert lead.query == "phone=1&x=a%20b"
    assert "api_key" not in source.parsed[-1].query
    assert "token-current" not in json.dumps(lead.call)


def test_credential_header_values_are_masked(make_app, store):
    source = FakeSource("ht", inbound=InboundSettings(token=TokenAuth(secret_envs=("ACME_TOKEN",),
                                                                      header="X-Api-Key")))
    response = make_app(source).test_client().post(
        "/hooks/ht", json={"phone": "1"},
        headers={"X-Api-Key": "token-current", "X-Hub-Signature-256": "sha256=00", "Authorization": "Bearer x"})
    lead = store.get(response.get_json()["lead_id"])
    assert lead.headers["X-Api-Key"] == MASK
    assert lead.headers["X-Hub-Signature-256"] == MASK
    assert "Authorization" not in lead.headers
    assert "token-current" not in json.dumps(lead.headers)
