from pathlib import Path
from textwrap import dedent

import yaml

from relay.intake.testing import case_names, discover, is_subset, run_cases

from .fakes import fake_loader

CALL = {"action": "create_lead", "method": "POST", "path": "/api/v1/leads", "query": {},
        "body": {"lead_token": "${ACME_LEAD_TOKEN}", "caller_id": "+15125550147",
                 "data": {"first_name": "Ana", "tier": ""}},
        "base_url": None, "secrets": {"lead_token": "ACME_LEAD_TOKEN"}, "route": None}


def write_suite(tmp_path: Path, cases: str) -> Path:
    (tmp_path / "acme.yaml").write_text("version: 1\n")
    fixtures = tmp_path / "fixtures" / "acme"
    fixtures.mkdir(parents=True)
    (fixtures / "lead.http").write_bytes(b"# sample\nPOST {{base_url}}/hooks/acme HTTP/1.1\n"
                                         b"Content-Type: application/json\n\n"
                                         b'{"phone": "+15125550147", "first_name": "Ana"}\n')
    test_file = tmp_path / "acme.test.yaml"
    test_file.write_text("# Acme cases\n" + dedent(cases))
    return test_file


def run(test_file: Path, **kwargs):
    return run_cases(test_file, loader=fake_loader, **kwargs)


def test_every_expectation_kind_passes(tmp_path):
    test_file = write_suite(tmp_path, """
        cases:
          - name: exact call
            request: {file: fixtures/acme/lead.http}
            expect: {call: %s}
          - name: subset
            request: {content_type: application/json, body: '{"phone": "+15125550147"}'}
            expect:
              call_subset: {body: {caller_id: "+15125550147"}}
          - name: missing phone
            request: {body: '{"email": "a@b.com"}'}
            expect:
              refusal: {field: caller_id, rule: required, paths: [$.phone]}
          - name: test lead
            request: {body: '{"phone": "1", "email": "x@example.test"}'}
            expect:
              drop: {reason: vendor test lead}
          - name: bad body
            request: {content_type: application/json, body: 'not json'}
            expect:
              error: {code: malformed_body}
          - name: env per case
            request: {body: '{"phone": "1"}'}
            env: {TIER: gold}
            expect:
              call_subset: {body: {data: {tier: gold}}}
        """ % __import__("json").dumps(CALL))
    results = run(test_file)
    assert [(r.name, r.passed, r.diff) for r in results if not r.passed] == []
    assert [r.name for r in results] == case_names(test_file)
    assert {r.source for r in results} == {"acme"}


def test_failure_shows_a_unified_diff_of_only_the_checked_keys(tmp_path):
    test_file = write_suite(tmp_path, """
        cases:
          - name: wrong phone
            request: {file: fixtures/acme/lead.http}
            expect:
              call_subset: {body: {caller_id: "+19999999999"}}
        """)
    [result] = run(test_file)
    assert not result.passed
    assert '-      "caller_id": "+19999999999"' in result.diff
    assert '+      "caller_id": "+15125550147"' in result.diff
    assert "lead_token" not in result.diff
    assert result.diff.startswith("--- expected\n+++ actual")


def test_a_different_outcome_kind_fails_and_shows_it(tmp_path):
    test_file = write_suite(tmp_path, """
        cases:
          - name: expects a drop
            request: {body: '{"phone": ""}'}
            expect: {drop: {reason: anything}}
        """)
    [result] = run(test_file)
    assert not result.passed
    assert '+  "refusal": {' in result.diff


def test_a_crash_never_passes(tmp_path):
    test_file = write_suite(tmp_path, """
        cases:
          - name: crash
            request: {body: '{"explode": true}'}
            expect: {error: {}}
        """)
    [result] = run(test_file)
    assert not result.passed and "RuntimeError" in result.diff


def test_update_rewrites_expectations_keeping_their_kind(tmp_path):
    test_file = write_suite(tmp_path, """
        cases:
          - name: exact call
            request: {file: fixtures/acme/lead.http}
            expect: {call: {}}
          - name: subset
            request: {file: fixtures/acme/lead.http}
            expect:
              call_subset: {body: {caller_id: "+10000000000"}}
          - name: became a refusal
            request: {body: '{}'}
            expect:
              call_subset: {body: {caller_id: "+10000000000"}}
          - name: unchanged
            request: {body: '{}'}
            expect:
              refusal: {rule: required}
        """)
    results = run(test_file, update=True)
    assert all(r.passed for r in results)
    assert [r.updated for r in results] == [True, True, True, False]
    text = test_file.read_text()
    assert text.startswith("# Acme cases\n")
    cases = yaml.safe_load(text)["cases"]
    assert cases[0]["expect"] == {"call": CALL}
    assert cases[1]["expect"] == {"call_subset": {"body": {"caller_id": "+15125550147"}}}
    assert cases[2]["expect"] == {"refusal": {"field": "caller_id", "rule": "required"}}
    assert cases[3]["expect"] == {"refusal": {"rule": "required"}}
    assert all(r.passed for r in run(test_file))


def test_malformed_cases_fail_with_a_reason(tmp_path):
    test_file = write_suite(tmp_path, """
        cases:
          - name: no expect
            request: {body: '{}'}
          - name: two kinds
            request: {body: '{}'}
            expect: {drop: {}, refusal: {}}
          - name: typo
            request: {bdoy: '{}'}
            expect: {drop: {}}
          - name: missing fixture
            request: {file: fixtures/acme/nope.http}
            expect: {drop: {}}
          - name: typo
            request: {body: '{}'}
            expect: {refusal: {}}
        """)
    results = run(test_file)
    reasons = {r.name: r.diff for r in results if not r.passed}
    assert "expect" in reasons["no expect"]
    assert "exactly one" in reasons["two kinds"]
    assert "cannot build the request" in reasons["missing fixture"]
    assert sum(1 for r in results if r.name == "typo" and not r.passed) == 2


def test_unreadable_test_file_is_one_failed_result(tmp_path):
    test_file = tmp_path / "acme.test.yaml"
    test_file.write_text("cases: {not: a list}\n")
    [result] = run(test_file)
    assert not result.passed and "cases" in result.diff


def test_missing_mapping_file_fails_every_case(tmp_path):
    test_file = tmp_path / "ghost.test.yaml"
    test_file.write_text("cases:\n  - name: x\n    request: {body: '{}'}\n    expect: {drop: {}}\n")
    [result] = run(test_file)
    assert not result.passed and "not found" in result.diff


def test_mapping_that_does_not_load_lists_its_problems(tmp_path):
    from relay.mapping.model import Problem

    class Invalid(Exception):
        problems = (Problem("acme.yaml", 3, 5, "unknown key 'lede'", "unknown_key"),)

    def loader(path, *, env=None):
        raise Invalid("invalid")

    test_file = write_suite(tmp_path, "cases:\n  - name: x\n    request: {body: '{}'}\n    expect: {drop: {}}\n")
    [result] = run_cases(test_file, loader=loader)
    assert "acme.yaml:3:5: unknown key 'lede' [unknown_key]" in result.diff


def test_discover(tmp_path):
    test_file = write_suite(tmp_path, "cases: []\n")
    (tmp_path / "other.yaml").write_text("version: 1\n")
    assert discover([tmp_path]) == [test_file]
    assert discover([tmp_path / "acme.yaml", test_file, tmp_path / "other.yaml"]) == [test_file]


def test_is_subset():
    assert is_subset({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}, "d": 3})
    assert not is_subset({"a": {"b": 2}}, {"a": {"b": 1}})
    assert not is_subset({"x": None}, {})
    assert is_subset([{"a": 1}], [{"a": 1, "b": 2}])
    assert not is_subset([1], [1, 2])
