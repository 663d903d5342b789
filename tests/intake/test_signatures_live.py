"""Every signature preset, body keys and unsigned query strings through a real gunicorn relay,
real HTTP, a SQLite outbox and the sandbox as Trackdrive."""
from __future__ import annotations

import base64
import json
import time
from typing import Iterator

import pytest
import requests

from relay.intake.auth import SignedRequest, sign
from relay.mapping.signatures import PRESETS, SignatureSpec
from relay.store import open_store
from tests.support.procs import ROOT
from tests.support.stack import Stack, wait_until

SECRET = "whsec_" + base64.b64encode(b"live-signing-key-0123456789").decode()  # fits every preset
BODY_KEY = "gk-5f1c9a7e-live"
MAPPING = """version: 1
trackdrive: {lead_token: "${SIG_LEAD_TOKEN}"}
lead:
  caller_id: $.phone
passthrough: true
inbound:
"""
TIMESTAMPED = [name for name, preset in PRESETS.items() if preset.get("timestamp")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("signatures")
    running = Stack(workdir, env_overrides={"SIG_SECRET": SECRET, "SIG_LEAD_TOKEN": "sig-token-4b1d",
                                            "SIG_BODY_KEY": BODY_KEY, "PYTHONPATH": str(ROOT)})
    running.mappings_dir.mkdir(parents=True)
    for name in PRESETS:
        (running.mappings_dir / f"sig-{name}.yaml").write_text(
            MAPPING + f'  auth:\n    signature: {{preset: {name}, secret: "${{SIG_SECRET}}"}}\n'
                      "  query: [utm_source]\n")
    (running.mappings_dir / "keyed.yaml").write_text(
        MAPPING + '  auth:\n    body_key: {path: $.google_key, secret: "${SIG_BODY_KEY}"}\n')
    running.start()
    yield running
    running.stop()


class Headers(dict):  # type: ignore[type-arg]
    def get(self, key, default=None):  # type: ignore[no-untyped-def, override]
        return next((v for k, v in self.items() if k.lower() == key.lower()), default)


def signed_headers(stack: Stack, preset: str, body: bytes, *, query: str = "", age_s: float = 0) -> dict[str, str]:
    spec = SignatureSpec(secret_envs=("SIG_SECRET",), **PRESETS[preset])
    path = f"/hooks/sig-{preset}"
    base = {"Content-Type": "application/json", "webhook-id": "msg_live_1"}
    request = SignedRequest("POST", stack.url + path, path, query, Headers(base), body)
    return {**base, **sign(spec, request, {"SIG_SECRET": SECRET}, time.time() - age_s)}


def post(stack: Stack, preset: str, body: bytes, headers: dict[str, str], query: str = "") -> requests.Response:
    url = f"{stack.url}/hooks/sig-{preset}" + (f"?{query}" if query else "")
    return requests.post(url, data=body, headers=headers, timeout=10)


def refused_check(response: requests.Response) -> str:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "unauthorized" and SECRET not in response.text
    return str(error["check"])


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_each_preset_accepts_its_signature_and_refuses_the_rest(stack: Stack, preset: str) -> None:
    body = json.dumps({"phone": "+15125550147", "first_name": preset}).encode()
    headers = signed_headers(stack, preset, body)
    assert post(stack, preset, body, headers).status_code == 202
    assert refused_check(post(stack, preset, body.replace(b"+1512", b"+1513"), headers)) == "signature"
    unsigned = {"Content-Type": "application/json"}
    assert refused_check(post(stack, preset, body, unsigned)) == "signature_missing"
    if preset in TIMESTAMPED:
        stale = signed_headers(stack, preset, body, age_s=3600)
        assert refused_check(post(stack, preset, body, stale)) == "signature_stale"


def test_unsigned_query_parameters_never_reach_trackdrive(stack: Stack) -> None:
    body = json.dumps({"phone": "+15125550148", "first_name": "Querida"}).encode()
    query = "utm_source=google&campaign=injected"
    # GitHub signs the body only: anyone can append to the URL of a captured request
    response = post(stack, "github", body, signed_headers(stack, "github", body), query=query)
    assert response.status_code == 202, response.text
    calls = wait_until(lambda: [c for c in stack.received()
                                if c["params"].get("data", {}).get("first_name") == "Querida"])
    data = calls[0]["params"]["data"]
    assert data.get("utm_source") == "google" and "campaign" not in data


def test_a_body_key_is_checked_removed_and_masked(stack: Stack) -> None:
    url = f"{stack.url}/hooks/keyed"
    good = {"phone": "+15125550149", "first_name": "Kay", "google_key": BODY_KEY}
    response = requests.post(url, json=good, timeout=10)
    assert response.status_code == 202, response.text
    for body in ({**good, "google_key": "wrong"}, {"phone": "+15125550149"}):
        refused = requests.post(url, json=body, timeout=10)
        assert refused.status_code == 401 and refused.json()["error"]["check"] == "body_key"
        assert BODY_KEY not in refused.text
    form = requests.post(url, data={"phone": "+15125550150", "google_key": BODY_KEY}, timeout=10)
    assert form.status_code == 202, form.text
    calls = wait_until(lambda: [c for c in stack.received() if c["params"].get("caller_id") == "+15125550149"])
    assert BODY_KEY not in json.dumps(calls[0]) and "google_key" not in json.dumps(calls[0])
    store = open_store(stack.database_url)
    try:
        stored = [lead for lead in store.list(source="keyed")]
        assert stored and all(BODY_KEY.encode() not in lead.body for lead in stored)
        assert BODY_KEY not in stack.logs()
    finally:
        store.close()
