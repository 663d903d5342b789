"""The hooks endpoint over real mapping files, the real loader and the recorded vendor samples."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay.settings import Settings
from relay.web import create_app
from tests.web.web_fakes import TEST_SECRET, FakeDispatcher, post_recorded

MAPPINGS = {
    "facebook-lead": """
version: 1
trackdrive: {lead_token: "${FB_LEAD_TOKEN}"}
prepare:
  - pairs: {at: $.field_data, name: name, value: values}
  - unwrap_lists
lead:
  caller_id: {path: $.field_data.phone_number, transform: phone, required: true}
data:
  first_name: $.field_data.first_name
inbound:
  auth:
    hmac: {preset: meta, secret: "${FB_APP_SECRET}"}
  idempotency: {key: $.id, window: 24h}
""",
    "facebook-leadgen": """
version: 1
trackdrive: {lead_token: "${FB_LEAD_TOKEN}"}
lead:
  caller_id: {path: $.phone, transform: phone, required: true}
inbound:
  auth:
    hmac: {preset: meta, secret: ["${FB_OLD_SECRET}", "${FB_APP_SECRET}"]}
  meta_verify_token: ${FB_VERIFY_TOKEN}
""",
    "typeform": """
version: 1
trackdrive: {lead_token: "${TF_LEAD_TOKEN}"}
prepare:
  - pairs: {at: $.form_response.answers, name: field.ref, value: auto}
lead:
  caller_id:
    path: $.form_response.answers['c2d3e4f5-a6b7-4c8d-9e0f-1a2b3c4d5e6a']
    transform: phone
    required: true
inbound:
  auth:
    hmac: {preset: typeform, secret: "${TF_SECRET}"}
""",
    "leadspedia": """
version: 1
trackdrive: {lead_token: "${LP_LEAD_TOKEN}"}
lead:
  caller_id: {path: $.phone_home, transform: phone, required: true}
passthrough: true
inbound:
  auth:
    token: {query: lp_campaign_key, secret: "${LP_KEY}"}
""",
    "unbounce": """
version: 1
trackdrive: {lead_token: "${UB_LEAD_TOKEN}"}
prepare:
  - decode_json: data.json
  - unwrap_lists
lead:
  caller_id: {path: "$['data.json'].phone_number", transform: phone, required: true}
drop:
  - when: {path: "$['data.json'].email", matches: '@example\\.test$'}
    reason: vendor test lead
inbound:
  auth:
    ip_allow: [127.0.0.0/8]
""",
}

ENV = {"FB_LEAD_TOKEN": "t1", "FB_APP_SECRET": TEST_SECRET, "FB_OLD_SECRET": "old", "FB_VERIFY_TOKEN": "v",
       "TF_LEAD_TOKEN": "t2", "TF_SECRET": TEST_SECRET, "LP_LEAD_TOKEN": "t3", "LP_KEY": "Xk7RmP2tQ9vWc4Ln8Hd3",
       "UB_LEAD_TOKEN": "t4"}


def write_mappings(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in MAPPINGS.items():
        (directory / f"{name}.yaml").write_text(text.lstrip())
    return directory


@pytest.fixture
def real(tmp_path: Path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'relay.db'}", sqlite_synchronous="NORMAL",
                        mappings_dir=str(write_mappings(tmp_path / "mappings")), env=ENV,
                        delivery_enabled=False)
    dispatcher = FakeDispatcher()
    app = create_app(settings, dispatcher=dispatcher)
    state = app.extensions["relay"]
    assert state.registry.problems == []
    yield app.test_client(), state.store, dispatcher
    state.store.close()


def test_meta_lead_object_is_verified_mapped_and_queued(real):
    client, store, dispatcher = real
    response = post_recorded(client, "facebook-lead", "facebook_lead_graph_object.http")
    assert response.status_code == 202, response.get_json()
    lead = store.get(response.get_json()["lead_id"])
    assert lead.call["body"]["caller_id"] == "+15125550147"
    assert lead.call["body"]["lead_token"] == "${FB_LEAD_TOKEN}"
    assert dispatcher.submitted == [lead.id]


def test_meta_lead_repeat_is_deduped_on_the_lead_id(real):
    client, _store, dispatcher = real
    first = post_recorded(client, "facebook-lead", "facebook_lead_graph_object.http")
    repeat = post_recorded(client, "facebook-lead", "facebook_lead_graph_object.http")
    assert repeat.get_json() == {**first.get_json(), "duplicate": True}
    assert len(dispatcher.submitted) == 1


def test_meta_notification_passes_the_rotated_signature_then_is_refused_for_no_phone(real):
    client, store, _ = real
    response = post_recorded(client, "facebook-leadgen", "facebook_leadgen_webhook.http")
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert (error["field"], error["rule"], error["paths"]) == ("caller_id", "required", ["$.phone"])
    assert store.get(response.get_json()["lead_id"]).status == "rejected"


def test_meta_handshake_with_real_mapping(real):
    client, _, _ = real
    ok = client.get("/hooks/facebook-leadgen?hub.mode=subscribe&hub.verify_token=v&hub.challenge=42")
    assert (ok.status_code, ok.get_data()) == (200, b"42")
    bad = client.get("/hooks/facebook-leadgen?hub.mode=subscribe&hub.verify_token=x&hub.challenge=42")
    assert bad.status_code == 403


def test_typeform_sample_is_verified_and_queued(real):
    client, _, _ = real
    response = post_recorded(client, "typeform", "typeform_form_response.http")
    assert response.status_code == 202, response.get_json()


def test_typeform_with_a_tampered_body_is_401(real):
    client, store, _ = real
    response = post_recorded(client, "typeform", "typeform_form_response.http",
                             headers={"Typeform-Signature": "sha256=AAAA"})
    assert response.status_code == 401
    assert store.list() == []


def test_leadspedia_get_has_its_campaign_key_removed(real):
    client, store, _ = real
    response = post_recorded(client, "leadspedia", "leadspedia_get_querystring.http")
    assert response.status_code == 202, response.get_json()
    lead = store.get(response.get_json()["lead_id"])
    assert "lp_campaign_key" not in lead.query
    assert "Xk7RmP2tQ9vWc4Ln8Hd3" not in json.dumps(lead.call)
    assert lead.call["body"]["caller_id"] == "+19565550149"


def test_leadspedia_without_its_key_is_401(real):
    client, _, _ = real
    response = client.get("/hooks/leadspedia?phone_home=9565550149")
    assert response.status_code == 401
    assert response.get_json()["error"]["message"] == "missing token in query parameter lp_campaign_key"


def test_unbounce_form_post_is_queued(real):
    client, _, _ = real
    response = post_recorded(client, "unbounce", "unbounce_form_submit.http")
    assert response.status_code == 202, response.get_json()


def test_unbounce_from_elsewhere_is_403(real):
    client, _, _ = real
    response = post_recorded(client, "unbounce", "unbounce_form_submit.http",
                             environ_overrides={"REMOTE_ADDR": "198.51.100.4"})
    assert response.status_code == 403


def test_real_parser_answers_415_and_400(real):
    client, store, _ = real
    assert client.post("/hooks/leadspedia?lp_campaign_key=Xk7RmP2tQ9vWc4Ln8Hd3", data=b"\x00\x01",
                       content_type="application/x-msgpack").status_code == 415
    response = client.post("/hooks/leadspedia?lp_campaign_key=Xk7RmP2tQ9vWc4Ln8Hd3", data=b"{oops",
                           content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_body"
    assert store.list() == []


def test_missing_secret_in_real_mapping_is_503(tmp_path: Path):
    env = {k: v for k, v in ENV.items() if k != "TF_SECRET"}
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'relay.db'}",
                        mappings_dir=str(write_mappings(tmp_path / "mappings")), env=env)
    client = create_app(settings, dispatcher=FakeDispatcher()).test_client()
    response = post_recorded(client, "typeform", "typeform_form_response.http")
    assert response.status_code == 503
    assert response.get_json()["error"]["variable"] == "TF_SECRET"
    assert TEST_SECRET not in response.get_data(as_text=True)
