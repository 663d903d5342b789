"""Every shipped vendor sample, posted over real HTTP with its real content type, reaches the
sandbox as exactly the call its mapping test expects."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.support.stack import SHIPPED_MAPPINGS, Stack, wait_until
from tests.support.vendors import vendor_request

MASK = "***"


def sample_cases() -> list[Any]:
    """(source, fixture, expected call) for each case that pins a whole call to a recorded request."""
    cases = []
    for test_file in sorted(SHIPPED_MAPPINGS.glob("*.test.yaml")):
        source = test_file.name[: -len(".test.yaml")]
        for case in yaml.safe_load(test_file.read_text())["cases"]:
            fixture = case["request"].get("file")
            if fixture and "call" in case["expect"]:
                cases.append(pytest.param(source, SHIPPED_MAPPINGS / fixture, case["expect"]["call"],
                                          id=f"{source}:{case['name']}"))
    return cases


def send(stack: Stack, source: str, fixture: Path) -> requests.Response:
    request = vendor_request(source, fixture)
    return requests.request(request.method, request.url(stack.url, source), data=request.body,
                            headers=request.headers, timeout=30)


def masked(params: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    return {key: (MASK if key in secrets else value) for key, value in params.items()}


def received_for(stack: Stack, lead_id: str) -> list[dict[str, Any]]:
    return [record for record in stack.received() if record.get("lead_id") == lead_id]


@pytest.mark.parametrize("source, fixture, expected", sample_cases())
def test_sample_reaches_trackdrive_as_expected(stack: Stack, source: str, fixture: Path,
                                               expected: dict[str, Any]) -> None:
    answer = send(stack, source, fixture)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "queued"
    lead_id = answer.json()["lead_id"]

    records = wait_until(lambda: received_for(stack, lead_id))
    assert len(records) == 1, "the sandbox should receive the lead exactly once"
    record = records[0]
    assert record["method"] == expected["method"]
    assert record["path"] == expected["path"]
    assert record["query"] == masked(expected["query"], expected["secrets"])
    assert record["body"] == masked(expected["body"], expected["secrets"])
    assert record["answer"]["status"] == 201


def test_every_shipped_source_has_an_end_to_end_sample() -> None:
    covered = {param.values[0] for param in sample_cases()}
    # The fetch sources carry only ids: their samples are fetched below and in test_e2e_fetch.py.
    expected = {p.name[: -len(".yaml")] for p in SHIPPED_MAPPINGS.glob("*.yaml")
                if not p.name.endswith(".test.yaml")} - {"facebook-leadgen", "hubspot-contacts"}
    assert covered == expected


def test_meta_leadgen_notification_is_fetched_and_delivered(stack: Stack) -> None:
    fixture = SHIPPED_MAPPINGS / "fixtures" / "facebook-leadgen" / "facebook_leadgen_webhook.http"
    answer = send(stack, "facebook-leadgen", fixture)
    assert answer.status_code == 202, answer.text
    entry, = answer.json()["leads"]
    assert entry["status"] == "fetching"
    records = wait_until(lambda: received_for(stack, entry["lead_id"]))
    assert len(records) == 1 and records[0]["answer"]["status"] == 201
    assert records[0]["body"]["data"]["facebook_lead_id"] == "1092837465019283"
