"""A SOAP vendor over real HTTP: its exact acknowledgement, its validation GET, hostile XML refused."""
from __future__ import annotations

import sqlite3
from typing import Iterator

import pytest
import requests

from tests.support.stack import SHIPPED_SECRETS, Stack, wait_until

API_KEY = SHIPPED_SECRETS["GENERIC_JSON_API_KEY"]
SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "urn:acme:leads/SubmitLead",
                "X-Api-Key": API_KEY}

SOAP_MAPPING = """\
version: 1
description: A SOAP vendor that resends until it reads its acknowledgement
trackdrive: {lead_token: "${GENERIC_JSON_LEAD_TOKEN}"}
lead:
  caller_id: {path: $.Envelope.Body.SubmitLead.Phone, transform: phone, required: true}
data:
  first_name: {path: $.Envelope.Body.SubmitLead.firstname, ignore_case: true}
  vendor_lead_id: $.Envelope.Body.SubmitLead['@id']
inbound:
  auth:
    token: {header: X-Api-Key, secret: "${GENERIC_JSON_API_KEY}"}
  answer:
    status: 200
    content_type: text/xml
    body: >-
      <soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
      <SubmitLeadResponse><Ack>{{ lead_id }}</Ack></SubmitLeadResponse></soap:Body></soap:Envelope>
    on_refused:
      body: >-
        <soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
        <SubmitLeadResponse><Nack>{{ error.rule }}</Nack></SubmitLeadResponse></soap:Body></soap:Envelope>
  handshakes:
    - method: GET
      auth: false
      when: {path: $.validate, exists: true}
      answer: {status: 200, content_type: text/plain, body: "OK {{ payload.validate }}"}
    - method: POST
      when: {path: $.Ping, exists: true}
      answer: {status: 200, content_type: text/xml, body: "<Pong/>"}
"""


def soap(phone: str, lead_id: str = "A-1") -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <lead:SubmitLead xmlns:lead="urn:acme:leads" id="{lead_id}">
      <lead:Phone>{phone}</lead:Phone>
      <lead:FirstName>Ada</lead:FirstName>
    </lead:SubmitLead>
  </soap:Body>
</soap:Envelope>""".encode()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("soap")
    (workdir / "mappings").mkdir()
    (workdir / "mappings" / "soap-vendor.yaml").write_text(SOAP_MAPPING)
    running = Stack(workdir).start()
    yield running
    running.stop()


def stored_leads(stack: Stack) -> int:
    with sqlite3.connect(stack.workdir / "relay.db") as db:
        count: int = db.execute("SELECT count(*) FROM leads").fetchone()[0]
    return count


def test_soap_lead_gets_its_exact_acknowledgement_and_reaches_trackdrive(stack: Stack) -> None:
    answer = requests.post(f"{stack.url}/hooks/soap-vendor", data=soap("(512) 555-0142"), headers=SOAP_HEADERS,
                           timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "text/xml; charset=utf-8"
    ack = answer.text
    assert ack.startswith('<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">')
    lead_id = ack.split("<Ack>")[1].split("</Ack>")[0]
    assert lead_id
    records = wait_until(lambda: [r for r in stack.received() if r.get("lead_id") == lead_id])
    assert len(records) == 1
    body = records[0]["body"]
    assert body["caller_id"] == "+15125550142"
    assert body["data"] == {"first_name": "Ada", "vendor_lead_id": "A-1"}


def test_refused_soap_lead_gets_the_refusal_answer_and_is_kept(stack: Stack) -> None:
    before = stored_leads(stack)
    answer = requests.post(f"{stack.url}/hooks/soap-vendor", data=soap("not a phone"), headers=SOAP_HEADERS,
                           timeout=10)
    assert answer.status_code == 200, answer.text
    assert "<Nack>phone</Nack>" in answer.text
    assert stored_leads(stack) == before + 1  # kept as rejected, for replay


def test_validation_get_is_answered_without_auth_and_stores_nothing(stack: Stack) -> None:
    before = stored_leads(stack)
    answer = requests.get(f"{stack.url}/hooks/soap-vendor", params={"validate": "c-8842"}, timeout=10)
    assert answer.status_code == 200
    assert answer.text == "OK c-8842"
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert stored_leads(stack) == before


def test_a_get_that_is_no_handshake_still_needs_auth(stack: Stack) -> None:
    answer = requests.get(f"{stack.url}/hooks/soap-vendor", params={"phone": "5125550142"}, timeout=10)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"


def test_an_authenticated_handshake_needs_auth_and_stores_nothing(stack: Stack) -> None:
    before = stored_leads(stack)
    ping = b"<Ping/>"
    refused = requests.post(f"{stack.url}/hooks/soap-vendor", data=ping,
                            headers={"Content-Type": "text/xml"}, timeout=10)
    assert refused.status_code == 401
    answered = requests.post(f"{stack.url}/hooks/soap-vendor", data=ping, headers=SOAP_HEADERS, timeout=10)
    assert answered.status_code == 200
    assert answered.text == "<Pong/>"
    assert stored_leads(stack) == before


@pytest.mark.parametrize("document, reason", [
    (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
     b"<l>&b;</l>", "dtd"),
    (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY x SYSTEM "file:///etc/passwd">]><l>&x;</l>', "dtd"),
])
def test_billion_laughs_and_xxe_are_400_and_store_nothing(stack: Stack, document: bytes, reason: str) -> None:
    before = stored_leads(stack)
    answer = requests.post(f"{stack.url}/hooks/soap-vendor", data=document, headers=SOAP_HEADERS, timeout=10)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "malformed_body"
    assert error["reason"] == reason
    assert stored_leads(stack) == before


def test_malformed_xml_is_400_with_its_line(stack: Stack) -> None:
    answer = requests.post(f"{stack.url}/hooks/soap-vendor", data=b"<Envelope>\n<Body></Envelope>",
                           headers=SOAP_HEADERS, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"]["line"] == 2
