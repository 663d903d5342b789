"""Inbound authentication on /hooks: ip_allow, token, basic, hmac, Meta's handshake."""
from __future__ import annotations

import base64

import pytest

from relay.intake.addresses import client_address
from relay.mapping.model import BasicAuth, HmacAuth, InboundSettings, TokenAuth
from tests.web.web_fakes import META_HMAC, TYPEFORM_HMAC, FakeSource, post_recorded, recorded


def guarded(name: str = "guarded", **inbound) -> FakeSource:
    return FakeSource(name, inbound=InboundSettings(**inbound))


def error_of(response) -> dict:
    return response.get_json()["error"]


# --- ip_allow and X-Forwarded-For ---

def test_ip_allow_admits_a_listed_address(make_app):
    client = make_app(guarded(ip_allow=("203.0.113.0/24",))).test_client()
    response = client.post("/hooks/guarded", json={"phone": "1"},
                           environ_overrides={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == 202


def test_ip_allow_refuses_others_with_403(make_app, store):
    client = make_app(guarded(ip_allow=("203.0.113.0/24",))).test_client()
    response = client.post("/hooks/guarded", json={"phone": "1"},
                           environ_overrides={"REMOTE_ADDR": "198.51.100.7"})
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert "ip_allow" in error_of(response)["message"]
    assert store.list() == []


def test_forwarded_for_is_ignored_from_an_untrusted_peer(make_app):
    client = make_app(guarded(ip_allow=("203.0.113.0/24",))).test_client()
    response = client.post("/hooks/guarded", json={"phone": "1"},
                           headers={"X-Forwarded-For": "203.0.113.9"},
                           environ_overrides={"REMOTE_ADDR": "198.51.100.7"})
    assert response.status_code == 403


def test_forwarded_for_is_honoured_from_a_trusted_proxy(make_app, store):
    client = make_app(guarded(ip_allow=("203.0.113.0/24",))).test_client()
    response = client.post("/hooks/guarded", json={"phone": "1"},
                           headers={"X-Forwarded-For": "203.0.113.9"},
                           environ_overrides={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 202
    assert store.get(response.get_json()["lead_id"]).client_addr == "203.0.113.9"


def test_a_spoofed_left_hop_does_not_help(make_app):
    client = make_app(guarded(ip_allow=("203.0.113.0/24",))).test_client()
    response = client.post("/hooks/guarded", json={"phone": "1"},
                           headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7"},
                           environ_overrides={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 403


@pytest.mark.parametrize("peer, forwarded, expected", [
    ("198.51.100.1", "1.2.3.4", "198.51.100.1"),
    ("10.0.0.1", "1.2.3.4, 10.0.0.2", "1.2.3.4"),
    ("10.0.0.1", "5.6.7.8, 1.2.3.4", "1.2.3.4"),
    ("10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),
    ("10.0.0.1", "junk", "junk"),
    ("10.0.0.1", None, "10.0.0.1"),
    ("::ffff:10.0.0.1", "1.2.3.4", "1.2.3.4"),
])
def test_client_address(peer, forwarded, expected):
    assert client_address(peer, forwarded, ("10.0.0.0/8",)) == expected


# --- token ---

def header_token() -> FakeSource:
    return guarded(token=TokenAuth(secret_envs=("ACME_TOKEN", "ACME_TOKEN_NEXT"), header="X-Api-Key"))


@pytest.mark.parametrize("token", ["token-current", "token-next"])
def test_token_in_header_passes_with_either_rotation_secret(make_app, token):
    client = make_app(header_token()).test_client()
    response = client.post("/hooks/guarded", json={"phone": "1"}, headers={"X-Api-Key": token})
    assert response.status_code == 202


@pytest.mark.parametrize("headers, message", [
    ({}, "missing token in header X-Api-Key"),
    ({"X-Api-Key": "wrong"}, "token mismatch in header X-Api-Key"),
    ({"X-Api-Key": "tökën"}, "token mismatch in header X-Api-Key"),
])
def test_token_in_header_fails_401(make_app, store, headers, message):
    client = make_app(header_token()).test_client()
    response = client.post("/hooks/guarded", json={"phone": "1"}, headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert error_of(response)["message"] == message
    assert "token-current" not in response.get_data(as_text=True)
    assert store.list() == []


def test_token_in_query(make_app):
    client = make_app(guarded(token=TokenAuth(secret_envs=("ACME_TOKEN",), query="key"))).test_client()
    assert client.get("/hooks/guarded?phone=1&key=token-current").status_code == 202
    response = client.get("/hooks/guarded?phone=1&key=nope")
    assert response.status_code == 401
    assert error_of(response)["message"] == "token mismatch in query parameter key"


# --- basic ---

def basic_header(user: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def basic_source() -> FakeSource:
    return guarded(basic=BasicAuth(username_env="ACME_USER", password_env="ACME_PASS"))


def test_basic_passes(make_app):
    client = make_app(basic_source()).test_client()
    response = client.post("/hooks/guarded", json={"phone": "1"},
                           headers=basic_header("acme", "s3cret:with-colon"))
    assert response.status_code == 202


@pytest.mark.parametrize("headers", [
    {},
    basic_header("acme", "wrong"),
    basic_header("other", "s3cret:with-colon"),
    {"Authorization": "Basic !!!notbase64"},
    {"Authorization": "Bearer abc"},
])
def test_basic_fails_401(make_app, headers):
    client = make_app(basic_source()).test_client()
    response = client.post("/hooks/guarded", json={"phone": "1"}, headers=headers)
    assert response.status_code == 401
    assert "basic" in error_of(response)["message"]


# --- hmac over the raw body, with the recorded signed samples ---

def test_meta_preset_accepts_the_recorded_signed_sample(make_app):
    client = make_app(guarded("facebook", hmac=META_HMAC)).test_client()
    response = post_recorded(client, "facebook", "facebook_leadgen_webhook.http")
    assert response.status_code in (202, 422)  # signature accepted; the fake mapping decides the rest


def test_meta_sha1_header_is_accepted(make_app):
    sha1 = HmacAuth(header="X-Hub-Signature", algorithm="sha1", encoding="hex", prefix="sha1=",
                    secret_envs=("META_APP_SECRET",))
    client = make_app(guarded("facebook", hmac=sha1)).test_client()
    assert post_recorded(client, "facebook", "facebook_leadgen_webhook.http").status_code != 401


def test_typeform_preset_accepts_the_recorded_signed_sample(make_app):
    client = make_app(guarded("typeform", hmac=TYPEFORM_HMAC)).test_client()
    assert post_recorded(client, "typeform", "typeform_form_response.http").status_code != 401


def test_the_graph_object_sample_is_signed_too(make_app):
    client = make_app(guarded("facebook", hmac=META_HMAC)).test_client()
    assert post_recorded(client, "facebook", "facebook_lead_graph_object.http").status_code != 401


def test_rotation_accepts_the_second_secret(make_app):
    rotating = HmacAuth(header="X-Hub-Signature-256", algorithm="sha256", encoding="hex",
                        prefix="sha256=", secret_envs=("OLD_SECRET", "META_APP_SECRET"))
    client = make_app(guarded("facebook", hmac=rotating)).test_client()
    assert post_recorded(client, "facebook", "facebook_leadgen_webhook.http").status_code != 401


def test_one_changed_byte_fails_the_signature(make_app, store):
    client = make_app(guarded("facebook", hmac=META_HMAC)).test_client()
    sample = recorded("facebook_leadgen_webhook.http")
    response = client.post("/hooks/facebook", data=sample.body.replace(b"leadgen", b"leadgeN"),
                           headers={"Content-Type": "application/json",
                                    "X-Hub-Signature-256": sample.headers["X-Hub-Signature-256"]})
    assert response.status_code == 401
    assert error_of(response)["message"] == "signature mismatch in header X-Hub-Signature-256"
    assert store.list() == []


def test_wrong_secret_fails(make_app):
    wrong = HmacAuth(header="Typeform-Signature", algorithm="sha256", encoding="base64",
                     prefix="sha256=", secret_envs=("OLD_SECRET",))
    client = make_app(guarded("typeform", hmac=wrong)).test_client()
    response = post_recorded(client, "typeform", "typeform_form_response.http")
    assert response.status_code == 401


def test_missing_signature_header_fails(make_app):
    client = make_app(guarded("facebook", hmac=META_HMAC)).test_client()
    response = client.post("/hooks/facebook", json={"phone": "1"})
    assert response.status_code == 401
    assert error_of(response)["message"] == "missing signature in header X-Hub-Signature-256"


def test_signature_without_prefix_fails(make_app):
    client = make_app(guarded("facebook", hmac=META_HMAC)).test_client()
    sample = recorded("facebook_leadgen_webhook.http")
    bare = sample.headers["X-Hub-Signature-256"].removeprefix("sha256=")
    response = post_recorded(client, "facebook", "facebook_leadgen_webhook.http",
                             headers={"X-Hub-Signature-256": bare})
    assert response.status_code == 401


def test_all_checks_must_pass_ip_first(make_app):
    source = guarded(ip_allow=("203.0.113.0/24",), token=TokenAuth(secret_envs=("ACME_TOKEN",),
                                                                    header="X-Api-Key"), hmac=META_HMAC)
    client = make_app(source).test_client()
    response = client.post("/hooks/guarded", json={"phone": "1"}, environ_overrides={"REMOTE_ADDR": "8.8.8.8"})
    assert response.status_code == 403
    response = client.post("/hooks/guarded", json={"phone": "1"}, headers={"X-Api-Key": "token-current"},
                           environ_overrides={"REMOTE_ADDR": "203.0.113.1"})
    assert response.status_code == 401
    assert "signature" in error_of(response)["message"]


# --- Meta's subscription handshake ---

def meta_source() -> FakeSource:
    return guarded("facebook", hmac=META_HMAC, meta_verify_token_env="META_VERIFY_TOKEN")


def test_meta_handshake_echoes_the_challenge(make_app, store):
    client = make_app(meta_source()).test_client()
    response = client.get("/hooks/facebook?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data() == b"1158201444"
    assert store.list() == []


def test_meta_handshake_with_a_wrong_token_is_403(make_app):
    client = make_app(meta_source()).test_client()
    response = client.get("/hooks/facebook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")
    assert response.status_code == 403
    assert "verify-me" not in response.get_data(as_text=True)


def test_meta_handshake_needs_the_source_to_expect_it(make_app):
    client = make_app(guarded("facebook", hmac=META_HMAC)).test_client()
    response = client.get("/hooks/facebook?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1")
    assert response.status_code == 401  # an ordinary unsigned GET
