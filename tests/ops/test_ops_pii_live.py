"""A real relay under gunicorn: an international phone and an IDN email never reach a log line or the admin view."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import pytest
import requests

from tests.support.stack import SHIPPED_SECRETS, Stack

ADMIN_TOKEN = "pii-admin-token-5e0c2b7d41"
PHONE = "+44 20 7946 0958"
EMAIL = "josé@exämple.com"
# Every spelling these values can take on the way: as sent, JSON-escaped, percent-encoded, digits only.
RAW = ("7946 0958", "2079460958", "josé@", "jos\\u00e9@", "jos%C3%A9", "José", "Jos\\u00e9", "Main St",
       "4479460958", "Main+St", "Jos%C3%A9")
# Spellings only a key gives away: a phone without its +, a percent-encoded key, an address in a query.
KEYED_QUERY = "mobile=447946095812&first%5Fname=Jos%C3%A9&street_address=1+Main+St"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    running = Stack(tmp_path, workers=1, env_overrides={
        "RELAY_ADMIN_TOKEN": ADMIN_TOKEN, "RELAY_ACCESS_LOG": "1", "RELAY_LOG_LEVEL": "debug"}).start()
    try:
        yield running
    finally:
        running.stop()


def test_request_log_and_admin_view_mask_an_international_phone_and_an_idn_email(stack: Stack) -> None:
    body = {"lead_id": "L-pii-1", "phone": PHONE, "email": EMAIL, "first_name": "José",
            "address": {"street": "1 Main St", "state": "Texas"}}
    query = f"phone={quote(PHONE)}&email={quote(EMAIL)}&first_name={quote('José')}&{KEYED_QUERY}"
    response = requests.post(f"{stack.url}/hooks/generic-json?{query}", json=body, timeout=30,
                             headers={"X-Api-Key": SHIPPED_SECRETS["GENERIC_JSON_API_KEY"]})
    assert response.status_code in (202, 422), response.text  # stored either way
    lead_id = response.json()["lead_id"]

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    view = requests.get(f"{stack.url}/admin/outbox/{lead_id}?body=1", headers=admin, timeout=30)
    assert view.status_code == 200
    leaked = [value for value in RAW if value in view.text]
    assert not leaked, view.text
    detail = view.json()
    assert detail["body"]["masked"] is True
    shown_body = json.loads(detail["body"]["data"])
    assert (shown_body["phone"], shown_body["email"], shown_body["first_name"]) == ("***58", "j***@exämple.com", "J***")
    assert "phone=***58" in detail["query"] and "j***@ex%C3%A4mple.com" in detail["query"]

    stack.stop()
    lines = [json.loads(line) for line in stack.relay.log().splitlines() if line.strip()]
    [hook_line] = [e for e in lines if e.get("logger") == "relay.request" and e.get("path") == "/hooks/generic-json"]
    assert hook_line["lead_id"] == lead_id
    access = [e for e in lines if e.get("logger") == "gunicorn.access" and "/hooks/generic-json" in e["msg"]]
    assert access and "phone=***58" in access[0]["msg"] and "j***@ex%C3%A4mple.com" in access[0]["msg"]
    for line in stack.relay.log().splitlines():
        leaked = [value for value in RAW if value in line]
        assert not leaked, f"log line leaks {leaked}: {line}"
