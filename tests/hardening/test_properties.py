"""Properties over generated input: the compiler and lint never crash, intake never answers 500.

Masking's properties (generated phones and emails never survive) live in tests/ops/test_pii.py.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.mapping.compiler import compile_source
from relay.mapping.lint import compile_file
from relay.settings import Settings
from relay.web import create_app
from tests.support.stack import SHIPPED_MAPPINGS, Stack
from tests.web.test_web_real_mapping import ENV as REAL_ENV
from tests.web.test_web_real_mapping import MAPPINGS, write_mappings
from tests.web.web_fakes import FakeDispatcher

# --- mapping documents ---

KEYS = ["version", "trackdrive", "lead", "lead_token", "caller_id", "inbound", "auth", "max_body", "split",
        "drop", "refuse", "when", "routes", "idempotency", "fetch", "transform", "from", "default", "match",
        "phone", "data", "token", "hmac", "mode", "files", "$.phone", "${TOKEN}", "required", "template"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.sampled_from(["$.phone", "$.contact.email", "${LEAD_TOKEN}", "{{ phone }}", "1KiB", "e164",
                                     "[*]", "$..x", "sync", "refuse", "", "{{", "$["]),
                    st.text(max_size=20))
DOCUMENTS = st.recursive(SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.sampled_from(KEYS), children, max_size=5)), max_leaves=25)
SHIPPED_TEXT = (SHIPPED_MAPPINGS / "generic-json.yaml").read_text()


def assert_placed(problems: list[Any]) -> None:
    for problem in problems:
        assert problem.file and problem.line >= 1 and problem.column >= 1, problem


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=DOCUMENTS)
def test_generated_mapping_documents_never_crash_the_compiler(document: Any) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    _, problems = compile_source("generated", "generated.yaml", text)
    assert_placed(problems)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, len(SHIPPED_TEXT)), noise=st.text(max_size=30), at=st.integers(0, len(SHIPPED_TEXT)))
def test_damaged_shipped_mappings_give_placed_problems(cut: int, noise: str, at: int) -> None:
    text = SHIPPED_TEXT[:cut] + noise + SHIPPED_TEXT[cut:][: max(0, at - cut)]
    _, problems = compile_source("generic-json", "generic-json.yaml", text)
    assert_placed(problems)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_lint_of_any_file_bytes_gives_placed_problems(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "random.yaml"
    path.write_bytes(raw)
    _, problems = compile_file(path)
    assert_placed(problems)


# --- request bodies through the intake ---

CONTENT_TYPES = st.one_of(st.sampled_from([
    "application/json", "application/json; charset=utf-16", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=b", "multipart/form-data", "text/plain", "application/xml", "",
    "application/vnd.api+json", "application/x-www-form-urlencoded; charset=latin-1"]),
    # Stripped: requests refuses a header value with leading spaces, and a server drops them.
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(str.strip))
JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                     st.text(max_size=20)),
                           lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=8), c,
                                                                                        max_size=4)),
                           max_leaves=20)
BODIES = st.one_of(st.binary(max_size=500), JSON_VALUES.map(lambda v: json.dumps(v).encode()),
                   st.sampled_from([b'{"n": 1e999}', b'{"n": -1E400}', b"[" * 5000, b'{"a": NaN}']),
                   st.text(max_size=200).map(str.encode))


@pytest.fixture(scope="module")
def intake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    workdir = tmp_path_factory.mktemp("properties")
    settings = Settings(database_url=f"sqlite:///{workdir / 'relay.db'}", sqlite_synchronous="NORMAL",
                        mappings_dir=str(write_mappings(workdir / "mappings")), env=REAL_ENV,
                        delivery_enabled=False)
    app = create_app(settings, dispatcher=FakeDispatcher())
    yield app.test_client()
    app.extensions["relay"].store.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(sorted(MAPPINGS)), body=BODIES, content_type=CONTENT_TYPES,
       method=st.sampled_from(["POST", "PUT", "GET"]))
def test_generated_bodies_never_get_a_500(intake: Any, source: str, body: bytes, content_type: str,
                                          method: str) -> None:
    answer = intake.open(f"/hooks/{source}", method=method, data=body, headers={"Content-Type": content_type})
    assert answer.status_code < 500, (answer.status_code, answer.data[:300])
    if answer.status_code >= 400:
        assert "error" in answer.get_json(), answer.data[:300]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("properties-live")).start()
    yield running
    running.stop()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES, content_type=CONTENT_TYPES)
def test_generated_bodies_through_gunicorn_never_get_a_500(stack: Stack, body: bytes, content_type: str) -> None:
    answer = requests.post(f"{stack.url}/hooks/generic-json", data=body, timeout=30,
                           headers={"Content-Type": content_type, "X-Api-Key": "example-key"})
    assert answer.status_code < 500, (answer.status_code, answer.text[:300])
    if answer.status_code >= 400:
        assert "error" in answer.json(), answer.text[:300]
