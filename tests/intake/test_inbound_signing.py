"""inbound.auth.signature and body_key compiled; body keys, unsigned query, ${ENV} in conditions;
the inbound side of mapping test cases."""
from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent

import pytest

from relay.errors import Unauthorized
from relay.intake.auth import masked_body
from relay.intake.pipeline import evaluate
from relay.intake.testing import run_cases
from relay.mapping.compiler import compile_source
from relay.mapping.model import InboundRequest, TrackdriveCall
from relay.mapping.signatures import Part, TimestampSource

BASE = """
version: 1
trackdrive: {lead_token: "${LEAD_TOKEN}"}
lead:
  caller_id: $.phone
passthrough: true
"""


def compiled(extra: str, env: dict[str, str] | None = None):
    return compile_source("acme", "acme.yaml", BASE + dedent(extra), env=env)


def problems_of(extra: str) -> list[str]:
    source, problems = compiled(extra)
    assert source is None
    return [str(problem) for problem in problems]


def test_a_preset_with_overrides_compiles_to_one_spec():
    source, problems = compiled("""
        inbound:
          auth:
            signature:
              preset: slack
              secret: ["${NEW}", "${OLD}"]
              timestamp: {header: X-Slack-Request-Timestamp, tolerance: 10m}
        """)
    assert problems == [] and source is not None
    spec = source.inbound.signature
    assert spec.header == "X-Slack-Signature" and spec.secret_envs == ("NEW", "OLD")
    assert spec.timestamp == TimestampSource(header="X-Slack-Request-Timestamp", tolerance_s=600.0)
    assert spec.signed == (Part("literal", "v0:"), Part("timestamp"), Part("literal", ":"), Part("body"))
    assert {"NEW", "OLD"} <= source.env_names


def test_hmac_keeps_working_as_a_signature_spec():
    source, _ = compiled("""
        inbound:
          auth: {hmac: {preset: meta, secret: "${APP_SECRET}"}}
        """)
    assert source is not None and source.inbound.signature is not None
    assert source.inbound.signature.algorithm == "hmac-sha256" and source.inbound.signed


def test_every_wrong_key_is_reported_with_its_place():
    found = problems_of("""
        inbound:
          auth:
            signature:
              secret: "${S}"
              algorithm: hmac-md5
              encoding: hex
              header: X-Sig
              signed: [timestamp, ".", body, {header: X-Id, literal: x}]
              format: list
              tolerance: 5m
        """)
    text = "\n".join(found)
    assert "acme.yaml:12:18: inbound.auth.signature.algorithm must be one of" in text
    assert "unknown key 'tolerance'" in text
    assert "a part is a name" in text


def test_cross_key_rules():
    text = "\n".join(problems_of("""
        inbound:
          auth:
            signature: {secret: "${S}", algorithm: hmac-sha256, encoding: hex, header: X-Sig,
                        signed: [timestamp, body], format: list}
        """))
    assert "signs a timestamp but has no 'timestamp:' source" in text
    assert "format: list but no list.signature_key" in text
    plain = "\n".join(problems_of("""
        inbound:
          auth:
            signature: {secret: "${S}", algorithm: sha256, encoding: hex, header: X-Sig, signed: [body]}
        """))
    assert "'secret' must be one of the signed parts" in plain


def test_a_literal_secret_is_refused_without_echoing_it():
    text = "\n".join(problems_of("""
        inbound:
          auth:
            signature: {preset: stripe, secret: sk_live_abcdef}
            body_key: {path: "$.items[*].key", secret: "${K}"}
        """))
    assert "sk_live_abcdef" not in text and "never the value itself" in text
    assert "body_key.path must be a plain path" in text


# --- body keys, unsigned query, ${ENV} in conditions ----------------------------------------

KEYED = """
inbound:
  auth:
    body_key: {path: $.google_key, secret: "${GOOGLE_KEY}"}
"""


def lead(body: dict[str, object], query: str = "") -> InboundRequest:
    return InboundRequest(content_type="application/json", body=json.dumps(body).encode(), query=query)


def only_call(source, request, env=None) -> TrackdriveCall:
    [draft] = evaluate(source, request, env=env).drafts
    assert isinstance(draft.outcome, TrackdriveCall)
    return draft.outcome


def test_body_key_is_checked_then_never_forwarded():
    source, _ = compiled(KEYED)
    env = {"GOOGLE_KEY": "g-key-123", "LEAD_TOKEN": "t"}
    call = only_call(source, lead({"phone": "+15125550147", "google_key": "g-key-123"}), env)
    assert "google_key" not in json.dumps(call.to_dict())
    for body, message in (({"phone": "1"}, "missing key"), ({"phone": "1", "google_key": "nope"}, "mismatch")):
        with pytest.raises(Unauthorized) as caught:
            evaluate(source, lead(body), env=env)
        assert caught.value.details["check"] == "body_key" and message in caught.value.message
        assert "g-key-123" not in caught.value.message
    # offline (preview, replay): the key is only removed
    assert "google_key" not in json.dumps(only_call(source, lead({"phone": "1", "google_key": "x"})).to_dict())


def test_body_key_is_masked_in_the_stored_body_however_it_is_written():
    source, _ = compiled(KEYED)
    key = source.inbound.body_key
    env = {"GOOGLE_KEY": "a/b c"}
    assert masked_body(b'{"google_key": "a\\/b c"}', key, env) == b'{"google_key": "***"}'
    assert masked_body(b"google_key=a%2Fb+c&x=1", key, env) == b"google_key=***&x=1"


def test_a_signed_source_merges_only_the_query_parameters_it_names():
    signed, _ = compiled("""
        inbound:
          auth: {hmac: {preset: meta, secret: "${S}"}}
        """)
    named, _ = compiled("""
        inbound:
          auth: {hmac: {preset: meta, secret: "${S}"}}
          query: [utm_source]
        """)
    open_source, _ = compiled("")
    request = lead({"phone": "+15125550147"}, query="campaign=x&utm_source=g")
    assert "campaign" not in only_call(signed, request).body.get("data", {})
    assert only_call(named, request).body["data"] == {"utm_source": "g"}
    assert only_call(open_source, request).body["data"] == {"campaign": "x", "utm_source": "g"}


def test_env_in_condition_values_is_read_when_mapping():
    source, problems = compiled("""
        drop:
          - when: {path: $.account, equals: "${OWN_ACCOUNT}"}
            reason: our own test traffic
          - when: {path: $.account, in: [internal, "${OTHER_ACCOUNT}"]}
            reason: partner test traffic
        """)
    assert problems == [] and {"OWN_ACCOUNT", "OTHER_ACCOUNT"} <= source.env_names
    env = {"OWN_ACCOUNT": "acct-77", "OTHER_ACCOUNT": "acct-88"}
    [mine] = evaluate(source, lead({"phone": "1", "account": "acct-77"}), env=env).drafts
    [partner] = evaluate(source, lead({"phone": "1", "account": "acct-88"}), env=env).drafts
    [other] = evaluate(source, lead({"phone": "1", "account": "acct-99"}), env=env).drafts
    assert mine.status == "dropped" and partner.status == "dropped" and other.status == "queued"
    # an unset variable equals nothing, not even an empty value
    [unset] = evaluate(source, lead({"phone": "1", "account": ""}), env={}).drafts
    assert unset.status == "queued"


# --- the inbound side of mapping test cases --------------------------------------------------

MAPPING = BASE + """
inbound:
  auth:
    signature: {preset: stripe, secret: "${STRIPE_SECRET}"}
"""


def suite(tmp_path: Path, cases: str) -> Path:
    (tmp_path / "acme.yaml").write_text(MAPPING)
    test_file = tmp_path / "acme.test.yaml"
    test_file.write_text("env: {STRIPE_SECRET: whsec_test, LEAD_TOKEN: t}\n" + dedent(cases))
    return test_file


def test_cases_can_sign_or_expect_a_refusal_naming_the_check(tmp_path):
    test_file = suite(tmp_path, """
        cases:
          - name: signed
            request: {body: '{"phone": "+15125550147"}', sign: true}
            expect: {call_subset: {body: {caller_id: "+15125550147"}}}
          - name: unsigned
            request: {body: '{"phone": "+15125550147"}', headers: {}}
            expect: {error: {code: unauthorized, check: signature_missing}}
          - name: stale
            request: {body: '{"phone": "+15125550147"}', sign: {age: 900}}
            expect: {error: {code: unauthorized, check: signature_stale}}
          - name: forged
            request: {body: '{"phone": "+15125550147"}', headers: {Stripe-Signature: "t=1,v1=00"}}
            expect: {error: {code: unauthorized}}
        """)
    results = run_cases(test_file)
    assert [(r.name, r.passed) for r in results] == [
        ("signed", True), ("unsigned", True), ("stale", True), ("forged", True)], [r.diff for r in results]


def test_update_never_turns_a_refusal_into_a_call_silently(tmp_path):
    test_file = suite(tmp_path, """
        cases:
          - name: was refused
            request: {body: '{"phone": "+15125550147"}', sign: true}
            expect: {error: {code: unauthorized, check: signature}}
        """)
    [held] = run_cases(test_file, update=True)
    assert not held.passed and held.kind_change == "error -> call" and not held.updated
    assert "error:" in test_file.read_text()
    [accepted] = run_cases(test_file, update=True, accept_kind_changes=True)
    assert accepted.updated and accepted.kind_change == "error -> call"
    assert all(result.passed for result in run_cases(test_file))
