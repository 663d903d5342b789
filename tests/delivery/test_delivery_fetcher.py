"""The fetcher against the sandbox's vendor stand-ins over real HTTP: each answer becomes the right value."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import pytest

from relay.delivery.fetcher import Fetcher
from relay.delivery.outcome import Failed, RetryLater
from relay.delivery.resolve import Resolution
from relay.mapping import load_source
from relay.mapping.fetch import appsecret_proof
from relay.sandbox import VendorBehaviour, create_sandbox_app
from relay.sandbox.server import RunningSandbox, serve_in_thread
from relay.store.base import Lead

ROOT = Path(__file__).resolve().parents[2]
TOKEN, APP_SECRET = "page-token-1234567890", "app-secret-abcdef"


@pytest.fixture(scope="module")
def graph() -> Iterator[RunningSandbox]:
    vendors = VendorBehaviour(graph_tokens=(TOKEN,), graph_app_secret=APP_SECRET)
    running = serve_in_thread(create_sandbox_app(vendors=vendors))
    yield running
    running.close()


@pytest.fixture
def fetcher(graph: RunningSandbox) -> Fetcher:
    graph.app.extensions["sandbox_vendors"].behaviour = VendorBehaviour(graph_tokens=(TOKEN,),
                                                                        graph_app_secret=APP_SECRET)
    source = load_source(ROOT / "mappings" / "facebook-leadgen.yaml")
    env = {"FACEBOOK_GRAPH_URL": graph.url, "FACEBOOK_PAGE_TOKEN": TOKEN, "FACEBOOK_APP_SECRET": APP_SECRET}
    return Fetcher({"facebook-leadgen": source}, env)


def lead(ids: list[str], index: int = 0) -> Lead:
    body = json.dumps({"object": "page", "entry": [{"id": "1", "changes": [
        {"field": "leadgen", "value": {"leadgen_id": lead_id, "page_id": "1"}} for lead_id in ids]}]}).encode()
    return Lead(id="L1", source="facebook-leadgen", status="fetching", received_at=time.time(), method="POST",
                content_type="application/json", query="", headers={}, body=body, client_addr="127.0.0.1",
                call=None, error=None, mapping_version="", dedupe_key=None, attempts=0, next_attempt_at=None,
                lease_owner="w", lease_until=None, response_status=None, response_body=None, delivered_at=None,
                updated_at=time.time(), batch_index=index, batch_size=len(ids))


def test_the_proof_is_the_token_signed_with_the_app_secret() -> None:
    # RFC 4231 test case 2: HMAC-SHA256 with key "Jefe" over "what do ya want for nothing?"
    assert appsecret_proof("what do ya want for nothing?", "Jefe") == \
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_each_lead_of_a_batch_is_fetched_and_mapped(fetcher: Fetcher) -> None:
    first, second = fetcher.resolve(lead(["1001", "1002"], 0)), fetcher.resolve(lead(["1001", "1002"], 1))
    assert isinstance(first, Resolution) and isinstance(second, Resolution)
    assert (first.status, second.status) == ("queued", "queued")
    assert first.call is not None and second.call is not None
    assert first.call["body"]["data"]["facebook_lead_id"] == "1001"
    assert second.call["body"]["data"]["facebook_lead_id"] == "1002"
    assert first.fetched["id"] == "1001" and "_notification" not in first.fetched


def test_an_expired_token_fails_naming_the_variable_not_its_value(fetcher: Fetcher, graph: RunningSandbox) -> None:
    state = graph.app.extensions["sandbox_vendors"]
    state.behaviour = state.behaviour.updated({"token_expired": True})
    outcome = fetcher.resolve(lead(["1003"]))
    assert isinstance(outcome, Failed) and outcome.reason == "vendor_unauthorized"
    assert "FACEBOOK_PAGE_TOKEN" in outcome.body and "expired" in outcome.body and TOKEN not in outcome.body


def test_a_wrong_app_secret_is_named(graph: RunningSandbox) -> None:
    source = load_source(ROOT / "mappings" / "facebook-leadgen.yaml")
    env = {"FACEBOOK_GRAPH_URL": graph.url, "FACEBOOK_PAGE_TOKEN": TOKEN, "FACEBOOK_APP_SECRET": "wrong"}
    outcome = Fetcher({"facebook-leadgen": source}, env).resolve(lead(["1004"]))
    assert isinstance(outcome, Failed) and "FACEBOOK_APP_SECRET" in outcome.body


def test_rate_limits_and_server_errors_are_retried_later(fetcher: Fetcher, graph: RunningSandbox) -> None:
    state = graph.app.extensions["sandbox_vendors"]
    state.behaviour = state.behaviour.updated({"rate_429": 1.0, "retry_after": 7})
    outcome = fetcher.resolve(lead(["1005"]))
    assert isinstance(outcome, RetryLater) and outcome.status == 429 and outcome.retry_after_s == 7
    state.behaviour = state.behaviour.updated({"rate_429": 0.0, "fail_rate": 1.0})
    outcome = fetcher.resolve(lead(["1005"]))
    assert isinstance(outcome, RetryLater) and outcome.status == 500


def test_an_unreachable_api_is_retried_later_without_the_url(fetcher: Fetcher) -> None:
    fetcher.env = {**fetcher.env, "FACEBOOK_GRAPH_URL": "http://127.0.0.1:9"}
    outcome = fetcher.resolve(lead(["1006"]))
    assert isinstance(outcome, RetryLater) and outcome.reason == "vendor_unreachable"
    assert TOKEN not in outcome.body


def test_an_unknown_lead_is_not_found(fetcher: Fetcher) -> None:
    outcome = fetcher.resolve(lead(["no-such-lead"]))
    assert isinstance(outcome, Failed) and outcome.reason == "vendor_not_found"


def test_an_unset_token_waits_for_the_operator(fetcher: Fetcher) -> None:
    fetcher.env = {key: value for key, value in fetcher.env.items() if key != "FACEBOOK_PAGE_TOKEN"}
    outcome = fetcher.resolve(lead(["1007"]))
    assert isinstance(outcome, RetryLater) and "FACEBOOK_PAGE_TOKEN" in outcome.body


def test_a_source_that_was_removed_waits(fetcher: Fetcher) -> None:
    fetcher.sources = {}
    assert isinstance(fetcher.resolve(lead(["1008"])), RetryLater)


def with_route(tmp_path: Path, route: str) -> Path:
    """The shipped mappings with one route added to facebook-leadgen."""
    import shutil

    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    path = tmp_path / "mappings" / "facebook-leadgen.yaml"
    path.write_text(path.read_text() + route)
    return path


def test_env_conditions_are_read_after_the_fetch_as_at_intake(graph: RunningSandbox, tmp_path: Path) -> None:
    path = with_route(tmp_path, '\nroutes:\n  - name: vip\n    when: {path: $.form_id, equals: "${VIP_FORM}"}\n'
                                '    data: {vip_form: "yes"}\n')
    env = {"FACEBOOK_GRAPH_URL": graph.url, "FACEBOOK_PAGE_TOKEN": TOKEN, "FACEBOOK_APP_SECRET": APP_SECRET,
           "VIP_FORM": "881234567890123"}  # the stand-in's form
    outcome = Fetcher({"facebook-leadgen": load_source(path)}, env).resolve(lead(["1005"]))
    assert isinstance(outcome, Resolution) and outcome.call is not None
    assert outcome.call["route"] == "vip" and outcome.call["body"]["data"]["vip_form"] == "yes"


def test_a_mapping_crash_after_the_fetch_is_loud_and_kept(fetcher: Fetcher, caplog: pytest.LogCaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from relay.mapping.source import Source

    def explode(self: Source, payload: object) -> object:
        raise KeyError("planted")

    monkeypatch.setattr(Source, "map_payload", explode)
    outcome = fetcher.resolve(lead(["1006"]))
    assert isinstance(outcome, Resolution) and outcome.status == "rejected"
    assert outcome.error is not None and outcome.error["rule"] == "mapping_error"
    [line] = [r for r in caplog.records if getattr(r, "event", "") == "mapping_crash"]
    assert line.lead_id == "L1" and line.exc_info and line.exc_info[0] is KeyError
