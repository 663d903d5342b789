"""A source's own answer and handshakes, through the app with real mapping files and a real SQLite outbox."""
from __future__ import annotations

from pathlib import Path

import pytest

from relay.settings import Settings
from relay.web import create_app
from tests.web.web_fakes import FakeDispatcher

MAPPINGS = {
    "ack": """
version: 1
trackdrive: {lead_token: "${ACK_TOKEN}"}
lead:
  caller_id: {path: $.phone, transform: phone, required: true}
inbound:
  idempotency: {key: $.id}
  answer:
    content_type: text/xml
    body: "<ack status='{{ status }}' count='{{ count }}'>{{ lead_ids | join(',') }}</ack>"
    on_refused: {status: 400, body: "<nack field='{{ error.field }}'>{{ error.rule }}</nack>"}
    on_duplicate: {body: "<ack again='{{ duplicate }}'>{{ lead_id }}</ack>"}
""",
    "batch": """
version: 1
trackdrive: {lead_token: "${ACK_TOKEN}"}
split: $.leads[*]
lead:
  caller_id: {path: $.phone, transform: phone, required: true}
inbound:
  answer: {body: "OK {{ count }} {{ batch_id }} {{ status }}"}
""",
    "broken": """
version: 1
trackdrive: {lead_token: "${ACK_TOKEN}"}
lead:
  caller_id: {path: $.phone, transform: phone, required: true}
inbound:
  answer: {body: "{{ lead_id.__class__.__mro__ }}"}
""",
    "echo": """
version: 1
trackdrive: {lead_token: "${ACK_TOKEN}"}
lead:
  caller_id: {path: $.phone, transform: phone, required: true}
inbound:
  auth:
    token: {header: X-Key, secret: "${ACK_KEY}"}
  handshakes:
    - {method: GET, auth: false, when: {path: $.challenge, exists: true}, answer: {body: "{{ payload.challenge }}"}}
    - method: [POST, PUT]
      when: {path: $.type, equals: url_verification}
      answer: {content_type: application/json, body: '{"challenge": "{{ payload.challenge }}"}'}
""",
}
ENV = {"ACK_TOKEN": "t", "ACK_KEY": "k"}


@pytest.fixture
def client(tmp_path: Path):
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    for name, text in MAPPINGS.items():
        (mappings / f"{name}.yaml").write_text(text.lstrip())
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'relay.db'}", sqlite_synchronous="NORMAL",
                        mappings_dir=str(mappings), env=ENV, delivery_enabled=False)
    app = create_app(settings, dispatcher=FakeDispatcher())
    state = app.extensions["relay"]
    assert state.registry.problems == []
    yield app.test_client(), state.store
    state.store.close()


def test_accepted_refused_and_duplicate_answers(client):
    http, store = client
    accepted = http.post("/hooks/ack", json={"id": "1", "phone": "5125550142"})
    assert accepted.status_code == 200
    assert accepted.content_type == "text/xml; charset=utf-8"
    lead_id = store.list()[0].id
    assert accepted.get_data(as_text=True) == f"<ack status='queued' count='1'>{lead_id}</ack>"
    repeat = http.post("/hooks/ack", json={"id": "1", "phone": "5125550142"})
    assert repeat.get_data(as_text=True) == f"<ack again='True'>{lead_id}</ack>"
    refused = http.post("/hooks/ack", json={"id": "2", "phone": "nope"})
    assert refused.status_code == 400
    assert refused.get_data(as_text=True) == "<nack field='caller_id'>phone</nack>"
    assert [lead.status for lead in store.list()].count("rejected") == 1  # kept for replay


def test_batch_answer_names_the_batch(client):
    http, store = client
    answer = http.post("/hooks/batch", json={"leads": [{"phone": "5125550142"}, {"phone": "5125550143"}]})
    assert answer.status_code == 200
    batch_id = store.list()[0].batch_id
    assert answer.get_data(as_text=True) == f"OK 2 {batch_id} accepted"


def test_an_answer_template_that_fails_falls_back_to_the_relay_answer(client):
    http, store = client
    answer = http.post("/hooks/broken", json={"phone": "5125550142"})
    assert answer.status_code == 202
    assert answer.get_json()["status"] == "queued"
    assert len(store.list()) == 1


def test_handshakes_echo_and_store_nothing(client):
    http, store = client
    get = http.get("/hooks/echo?challenge=abc123")
    assert (get.status_code, get.get_data(as_text=True)) == (200, "abc123")
    unauthenticated = http.post("/hooks/echo", json={"type": "url_verification", "challenge": "x"})
    assert unauthenticated.status_code == 401
    post = http.post("/hooks/echo", json={"type": "url_verification", "challenge": "x"}, headers={"X-Key": "k"})
    assert post.status_code == 200
    assert post.get_json() == {"challenge": "x"}
    assert store.list() == []
    lead = http.post("/hooks/echo", json={"phone": "5125550142"}, headers={"X-Key": "k"})
    assert lead.status_code == 202
    assert len(store.list()) == 1
