"""Every vendor's recorded request, posted to a real relay the way that vendor sends it, reaches
the sandbox as a lead with the caller_id its test cases expect; and a request without the vendor's
credential is turned away before anything is stored."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.support.stack import SHIPPED_MAPPINGS, Stack, wait_until
from tests.support.vendors import HEADER_KEYS, URL_KEYS, vendor_request

VENDORS = ("google-ads", "jotform", "elementor-basic", "elementor-advanced", "gravity-forms", "hubspot",
           "tally", "leadconduit", "boberdoo", "wpforms", "contact-form-7", "formstack", "zapier",
           "instapage")


def full_lead_case(source: str) -> tuple[Path, dict[str, Any]]:
    """The fixture and the whole expected call of the source's first case."""
    cases = yaml.safe_load((SHIPPED_MAPPINGS / f"{source}.test.yaml").read_text())["cases"]
    case = next(c for c in cases if "file" in c["request"] and "call" in c["expect"])
    return SHIPPED_MAPPINGS / case["request"]["file"], case["expect"]["call"]


def post(stack: Stack, source: str, fixture: Path) -> requests.Response:
    request = vendor_request(source, fixture)
    return requests.request(request.method, request.url(stack.url, source), data=request.body,
                            headers=request.headers, timeout=30)


@pytest.mark.parametrize("source", VENDORS)
def test_vendor_lead_reaches_trackdrive(stack: Stack, source: str) -> None:
    fixture, expected = full_lead_case(source)
    answer = post(stack, source, fixture)
    assert answer.status_code == 202, answer.text
    lead_id = answer.json()["lead_id"]

    records = wait_until(lambda: [r for r in stack.received() if r.get("lead_id") == lead_id])
    assert len(records) == 1, f"{source}: the sandbox should receive the lead exactly once"
    assert records[0]["body"]["caller_id"] == expected["body"]["caller_id"]
    assert records[0]["answer"]["status"] == 201


@pytest.mark.parametrize("source", sorted({*URL_KEYS, *HEADER_KEYS}))
def test_vendor_request_without_its_key_is_refused(stack: Stack, source: str) -> None:
    fixture, _ = full_lead_case(source)
    recorded = vendor_request(source, fixture)
    headers = {k: v for k, v in recorded.headers.items() if k not in dict(HEADER_KEYS.values())}
    url = f"{stack.url}/hooks/{source}"  # the recorded query without the added key
    answer = requests.request(recorded.method, url, data=recorded.body, headers=headers, timeout=30)
    assert answer.status_code == 401, answer.text
    assert "error" in answer.json()


def test_every_new_vendor_is_shipped() -> None:
    shipped = {p.name[: -len(".yaml")] for p in SHIPPED_MAPPINGS.glob("*.yaml") if not p.name.endswith(".test.yaml")}
    assert set(VENDORS) <= shipped


# A changed signed body, or a wrong key inside the body, is turned away before anything is stored.
TAMPERED = {
    "tally": (b"Harold", b"Gerald"),
    "hubspot": (b'"Aaliyah"', b'"Mallory"'),
    "google-ads": (b"hk-9f2c4e71b0a3", b"hk-guessed0000"),
    "formstack": (b"formstack-handshake-5c1e", b"formstack-handshake-0000"),
}


@pytest.mark.parametrize("source", sorted(TAMPERED))
def test_vendor_request_failing_its_signature_or_body_key_is_refused(stack: Stack, source: str) -> None:
    fixture, _ = full_lead_case(source)
    recorded = vendor_request(source, fixture)
    original, changed = TAMPERED[source]
    assert original in recorded.body
    answer = requests.request(recorded.method, recorded.url(stack.url, source),
                              data=recorded.body.replace(original, changed, 1), headers=recorded.headers, timeout=30)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "unauthorized"
