"""The console through Flask: access, pages, actions, reconciliation, playground, bad input."""
from __future__ import annotations

import csv
import io
import logging

import pytest

from relay.store.report import reconcile
from tests.console.conftest import ADMIN_TOKEN, READONLY_TOKEN, TOKENS, csrf_of, log_in


def post_lead(client, phone: str = "+15125550147", **extra) -> str:
    response = client.post("/hooks/acme", json={"phone": phone, "email": "Dana.Whitfield@example.com", **extra})
    assert response.status_code in (200, 202, 422), response.get_json()
    return response.get_json()["lead_id"]


# --- access ---

def test_without_a_token_the_console_and_admin_endpoints_are_off(make_app, acme):
    client = make_app(acme).test_client()
    for path in ("/admin/", "/admin/login", "/admin/outbox", "/metrics"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "RELAY_ADMIN_TOKEN" in response.get_data(as_text=True)


def test_pages_need_a_login_and_a_wrong_token_is_refused(client):
    assert client.get("/admin/leads").status_code == 302
    page = client.get("/admin/login").get_data(as_text=True)
    refused = client.post("/admin/login", data={"token": "wrong", "csrf_token": csrf_of(page)})
    assert refused.status_code == 401 and "does not match" in refused.get_data(as_text=True)
    assert "wrong" not in refused.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_the_session_cookie_is_httponly_strict_and_pages_send_a_csp(client):
    response = log_in(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    page = client.get("/admin/")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "script-src" not in page.headers["Content-Security-Policy"]  # none at all


def test_behind_https_the_cookie_is_secure(client):
    page = client.get("/admin/login", base_url="https://relay.example")
    response = client.post("/admin/login", base_url="https://relay.example",
                           data={"token": ADMIN_TOKEN, "csrf_token": csrf_of(page.get_data(as_text=True))})
    assert "Secure" in response.headers["Set-Cookie"]


def test_a_forged_session_cookie_is_a_clear_401(client):
    client.set_cookie("relay_console", "eyJyb2xlIjoiYWRtaW4ifQ.forged.signature", path="/admin")
    response = client.get("/admin/")
    assert response.status_code == 401
    assert "not valid" in response.get_data(as_text=True)


def test_a_post_without_the_csrf_token_is_refused(admin):
    lead_id = post_lead(admin)
    response = admin.post("/admin/actions/purge", data={"id": lead_id})
    assert response.status_code == 403
    assert "CSRF" in response.get_data(as_text=True)
    assert admin.get(f"/admin/leads/{lead_id}").status_code == 200  # still there


def test_read_only_sees_everything_and_changes_nothing(client):
    lead_id = post_lead(client)
    log_in(client, READONLY_TOKEN, name="auditor")
    confirm = client.get(f"/admin/actions/purge?id={lead_id}")
    assert confirm.status_code == 200 and "Read-only" in confirm.get_data(as_text=True)
    token = csrf_of(confirm.get_data(as_text=True))
    refused = client.post("/admin/actions/purge", data={"id": lead_id, "csrf_token": token})
    assert refused.status_code == 403 and "read-only" in refused.get_data(as_text=True)
    assert client.get(f"/admin/leads/{lead_id}").status_code == 200


def test_admin_endpoints_take_either_token(app):
    client = app.test_client()
    assert client.get("/admin/outbox", headers={"Authorization": f"Bearer {READONLY_TOKEN}"}).status_code == 200
    assert client.get("/admin/outbox", headers={"X-Admin-Token": ADMIN_TOKEN}).status_code == 200
    assert client.get("/admin/outbox").status_code == 401


# --- pages ---

def test_overview_shows_each_source_with_problems_in_words(admin):
    post_lead(admin)
    post_lead(admin, phone="")  # refused
    page = admin.get("/admin/").get_data(as_text=True)
    assert 'id="source-acme"' in page and "✓ OK" in page


def test_overview_names_a_missing_secret(make_app, acme):
    env = {key: value for key, value in TOKENS.items() if key != "ACME_LEAD_TOKEN"}
    client = make_app(acme, env=env).test_client()
    log_in(client)
    page = client.get("/admin/").get_data(as_text=True)
    assert "Problem: secrets missing: ACME_LEAD_TOKEN" in page


def test_leads_are_found_by_a_phone_in_any_spelling_and_shown_masked(admin):
    wanted = post_lead(admin, phone="+15125550147")
    post_lead(admin, phone="+15125550148")
    page = admin.get("/admin/leads?q=(512) 555-0147").get_data(as_text=True)
    assert wanted in page and page.count('class="lead-link"') == 1
    assert "5125550147" not in page and "***47" in page
    by_email = admin.get("/admin/leads?q=DANA.whitfield@example.com")  # this fake's calls carry no email
    assert by_email.status_code == 200 and "No lead matches" in by_email.get_data(as_text=True)


def test_leads_page_by_keyset(admin):
    ids = [post_lead(admin, phone=f"+1512555{index:04d}") for index in range(3)]
    from relay.web.console import pages

    pages.PAGE_SIZE, old = 2, pages.PAGE_SIZE
    try:
        first = admin.get("/admin/leads").get_data(as_text=True)
        assert first.count('class="lead-link"') == 2 and 'id="next-page"' in first
        link = first.split('id="next-page" href="')[1].split('"')[0].replace("&amp;", "&")
        second = admin.get(link).get_data(as_text=True)
        assert second.count('class="lead-link"') == 1 and ids[0] in second
    finally:
        pages.PAGE_SIZE = old


@pytest.mark.parametrize("query, field", [("status=nonsense", "status"), ("since=yesterday", "since"),
                                          ("q=not-a-phone", "q"), ("after=zzz", "after")])
def test_malformed_filters_are_a_400_page_naming_the_field(admin, query: str, field: str):
    response = admin.get(f"/admin/leads?{query}")
    assert response.status_code == 400
    assert field in response.get_data(as_text=True)


def test_an_unknown_lead_is_a_404_page(admin):
    response = admin.get("/admin/leads/NO-SUCH-LEAD")
    assert response.status_code == 404 and "no lead with id" in response.get_data(as_text=True)


def test_a_vendor_value_is_escaped(admin):
    lead_id = post_lead(admin, first_name="<script>alert(1)</script>", note="<script>x</script>")
    html = admin.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_lead_detail_masks_until_revealed_and_logs_the_reveal(admin, caplog):
    lead_id = post_lead(admin, phone="+15125550147")
    page = admin.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    assert "5125550147" not in page and "dana.whitfield" not in page.lower()
    caplog.set_level(logging.INFO, logger="relay.audit")
    revealed = admin.post(f"/admin/leads/{lead_id}/reveal", data={"csrf_token": csrf_of(page)})
    assert "+15125550147" in revealed.get_data(as_text=True)
    [record] = [r for r in caplog.records if getattr(r, "event", "") == "pii_revealed"]
    assert record.lead_id == lead_id


def test_refusal_shows_field_and_rule(admin):
    lead_id = post_lead(admin, phone="")
    page = admin.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    assert 'id="refusal-field"' in page


# --- actions ---

def test_purge_one_lead_confirms_then_acts_and_is_audited(admin, store):
    lead_id = post_lead(admin)
    confirm = admin.get(f"/admin/actions/purge?id={lead_id}").get_data(as_text=True)
    assert "<strong>1</strong> lead(s)" in confirm
    done = admin.post("/admin/actions/purge", data={"id": lead_id, "csrf_token": csrf_of(confirm)})
    assert done.status_code == 200 and store.get(lead_id) is None
    [entry] = store.audit_log()
    assert (entry.action, entry.lead_count, entry.selection) == ("purge", 1, f"id={lead_id}")
    assert entry.actor.startswith("dana (admin)")
    assert "purge" in admin.get("/admin/audit").get_data(as_text=True)


def test_an_oversized_selection_is_refused_with_its_limit(admin, monkeypatch):
    from relay.web.console import actions

    monkeypatch.setattr(actions, "MAX_SELECTION", 1)
    post_lead(admin)
    post_lead(admin, phone="+15125550148")
    response = admin.get("/admin/actions/purge?source=acme")
    assert response.status_code == 400 and "more than 1 leads" in response.get_data(as_text=True)


def test_an_unknown_action_is_a_404(admin):
    assert admin.get("/admin/actions/explode?id=x").status_code == 404


# --- reconciliation and playground ---

def test_reconciliation_csv_matches_the_store(admin, store):
    post_lead(admin)
    post_lead(admin, phone="")
    response = admin.get("/admin/reconciliation.csv?tz=America/Chicago")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    total = rows[-1]
    assert (total["day"], total["source"]) == ("total", "total")
    assert int(total["received"]) == 2 and int(total["refused"]) == 1 and int(total["accepted"]) == 1
    expected = reconcile(store.daily_counts("America/Chicago"))[-1].values
    assert {key: int(total[key]) for key in expected} == expected


def test_reconciliation_refuses_an_unknown_zone(admin):
    response = admin.get("/admin/reconciliation?tz=Mars/Olympus")
    assert response.status_code == 400 and "IANA" in response.get_data(as_text=True)


def test_playground_maps_without_storing(admin, store):
    page = admin.get("/admin/playground").get_data(as_text=True)
    result = admin.post("/admin/playground", data={"csrf_token": csrf_of(page), "source": "acme",
                                                   "body": '{"phone": "+15125550147"}',
                                                   "content_type": "application/json"})
    text = result.get_data(as_text=True)
    assert result.status_code == 200 and 'id="pg-kind">call<' in text
    assert store.list() == []
