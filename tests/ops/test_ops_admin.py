"""Who may see the admin surface, and the read-only outbox view."""
from __future__ import annotations

import json
import logging

import pytest

from tests.ops.conftest import ADMIN_TOKEN, OUTSIDE

ADMIN_PATHS = ["/metrics", "/admin/outbox", "/admin/outbox/counts", "/admin/outbox/nope"]


def post_lead(client, phone: str = "+15125550147", **extra) -> str:
    response = client.post("/hooks/acme", json={"phone": phone, "email": "dana.whitfield@example.com", **extra})
    assert response.status_code == 202, response.get_json()
    return response.get_json()["lead_id"]


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_without_a_token_admin_endpoints_are_off_even_for_loopback(make_app, acme, path: str):
    client = make_app(acme).test_client()  # test client peer: 127.0.0.1, no forwarding header
    for response in (client.get(path), client.get(path, environ_base=OUTSIDE)):
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "forbidden"
        assert "set RELAY_ADMIN_TOKEN" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_a_local_reverse_proxy_does_not_make_outside_callers_local(anonymous, path: str):
    proxied = anonymous.get(path, headers={"X-Forwarded-For": "198.51.100.7"})
    assert proxied.status_code == 401


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_with_a_token_every_caller_needs_it(token_app, path: str):
    client = token_app.test_client()
    assert client.get(path).status_code == 401  # loopback is not enough once a token is set
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get(path, environ_base=OUTSIDE,
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code in (200, 404)
    assert client.get(path, environ_base=OUTSIDE,
                      headers={"X-Admin-Token": ADMIN_TOKEN}).status_code in (200, 404)


def test_refusals_never_echo_the_token(token_app):
    response = token_app.test_client().get("/metrics", headers={"X-Admin-Token": ADMIN_TOKEN[:-1]})
    assert response.status_code == 401
    assert ADMIN_TOKEN[:-1] not in response.get_data(as_text=True)


def test_outbox_list_filters_and_masks(client):
    lead_id = post_lead(client)
    client.post("/hooks/acme", json={"email": "x@example.com"})  # rejected: no phone

    listed = client.get("/admin/outbox?status=queued&source=acme&limit=5").get_json()
    assert [lead["id"] for lead in listed["leads"]] == [lead_id]
    assert listed["limit"] == 5
    rejected = client.get("/admin/outbox?status=rejected").get_json()["leads"]
    assert rejected[0]["error"]["field"] == "caller_id"


@pytest.mark.parametrize("query, field", [("status=nonsense", "status"), ("limit=0", "limit"),
                                          ("limit=abc", "limit"), ("limit=100000", "limit")])
def test_outbox_list_names_a_bad_parameter(client, query: str, field: str):
    response = client.get(f"/admin/outbox?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field


def test_outbox_lead_is_masked_and_the_body_only_on_request(client):
    lead_id = post_lead(client)
    detail = client.get(f"/admin/outbox/{lead_id}")
    assert detail.status_code == 200
    text = detail.get_data(as_text=True)
    assert "5125550147" not in text and "dana.whitfield@" not in text
    lead = detail.get_json()
    assert lead["call"]["body"]["caller_id"] == "***47"
    assert lead["call"]["body"]["lead_token"] == "${ACME_LEAD_TOKEN}"  # a reference, never the value
    assert "body" not in lead and lead["body_bytes"] > 0

    with_body = client.get(f"/admin/outbox/{lead_id}?body=1").get_json()
    assert with_body["body"]["masked"] is True
    assert json.loads(with_body["body"]["data"]) == {"phone": "***47", "email": "d***@example.com"}


def test_a_revealed_body_is_raw_and_the_reveal_is_logged(client, caplog):
    lead_id = post_lead(client, phone="+44 20 7946 0958", first_name="José", address="1 Main St")
    caplog.set_level(logging.INFO, logger="relay.audit")
    masked = client.get(f"/admin/outbox/{lead_id}?body=1").get_json()["body"]["data"]
    assert "7946" not in masked and "José" not in masked and "Main" not in masked
    assert not [r for r in caplog.records if getattr(r, "event", "") == "pii_revealed"]

    revealed = client.get(f"/admin/outbox/{lead_id}?body=1&reveal=1").get_json()["body"]
    assert json.loads(revealed["data"])["phone"] == "+44 20 7946 0958" and "masked" not in revealed
    [record] = [r for r in caplog.records if getattr(r, "event", "") == "pii_revealed"]
    assert (record.lead_id, record.via, record.client_addr) == (lead_id, "admin_api", "127.0.0.1")
    assert record.authenticated_by == "admin_token"


def test_outbox_unknown_lead_is_a_404(client):
    response = client.get("/admin/outbox/no-such-lead")
    assert response.status_code == 404
    assert response.get_json()["error"]["field"] == "lead_id"


def test_outbox_counts(client):
    post_lead(client)
    post_lead(client, phone="+15125550148")
    counts = client.get("/admin/outbox/counts").get_json()
    assert counts["pending"] == 2 and counts["dead"] == 0
    assert counts["oldest_pending_age_s"] >= 0
    assert sum(c["count"] for c in counts["counts"] if c["status"] == "queued") == 2
    assert client.get("/admin/outbox/counts?since=yesterday").status_code == 400
