"""A file full of mistakes: every one is reported, with its place, in one run."""
from __future__ import annotations

from pathlib import Path

import pytest

from relay.intake.lint import lint_paths
from relay.mapping import MappingInvalid, load_source

BROKEN = Path(__file__).parent / "broken"
MANY = BROKEN / "many_faults.yaml"

EXPECTED = {  # (line, column, code) for every fault written into many_faults.yaml
    (1, 10, "bad_version"),
    (2, 1, "unknown_key"),
    (4, 15, "invalid_option"),
    (6, 13, "bad_url"),
    (7, 15, "literal_secret"),
    (8, 15, "missing_env"),
    (10, 5, "unknown_step"),
    (13, 11, "bad_jsonpath"),
    (14, 24, "unknown_transform"),
    (15, 15, "wrong_type"),
    (16, 10, "wrong_shape"),
    (17, 3, "invalid_option"),
    (18, 3, "invalid_option"),
    (19, 3, "unknown_param"),
    (20, 3, "misplaced_key"),
    (22, 3, "bad_token_name"),
    (23, 34, "bad_argument"),
    (24, 13, "template_error"),
    (25, 3, "unknown_name"),
    (26, 16, "bad_jsonpath"),
    (27, 36, "bad_argument"),
    (29, 5, "missing_key"),
    (29, 36, "bad_regex"),
    (30, 11, "wrong_shape"),
    (33, 5, "missing_key"),
    (34, 17, "wrong_type"),
    (36, 12, "invalid_param"),
    (38, 14, "wrong_type"),
    (40, 13, "bad_size"),
    (41, 10, "invalid_option"),
    (42, 18, "bad_duration"),
    (44, 40, "literal_secret"),
    (45, 20, "invalid_option"),
    (45, 36, "missing_env"),
    (46, 16, "bad_cidr"),
    (46, 28, "bad_cidr"),
    (49, 13, "bad_duration"),
    (50, 28, "bad_argument"),
}


def test_every_fault_is_reported_with_its_place_in_one_run() -> None:
    problems = lint_paths([str(MANY)], env={"ACME_TOKEN": "x"})
    found = {(p.line, p.column, p.code) for p in problems}
    assert EXPECTED <= found, sorted(EXPECTED - found)
    assert all(str(p).startswith(f"{MANY}:{p.line}:{p.column}: ") for p in problems)


def test_closest_key_and_transform_are_suggested() -> None:
    messages = [p.message for p in lint_paths([str(MANY)])]
    assert any("did you mean 'description'?" in m for m in messages)
    assert any("did you mean 'phone'?" in m for m in messages)
    assert any("did you mean 'decode_json'?" in m for m in messages)


def test_literal_secrets_are_never_echoed() -> None:
    problems = lint_paths([str(MANY)])
    text = "\n".join(str(p) for p in problems)
    assert "abc123-literal-token" not in text
    assert "hunter2" not in text


def test_missing_env_is_checked_only_when_env_is_given() -> None:
    without_env = {p.code for p in lint_paths([str(MANY)])}
    assert "missing_env" not in without_env
    with_env = [p for p in lint_paths([str(MANY)], env={}) if p.code == "missing_env"]
    assert {p.message for p in with_env} == {"environment variable MISSING_AUTH_TOKEN is not set",
                                             "environment variable HMAC_SECRET is not set"}


def test_load_source_raises_with_every_problem() -> None:
    with pytest.raises(MappingInvalid) as caught:
        load_source(MANY)
    assert len(caught.value.problems) >= len(EXPECTED) - 2
    assert "many_faults.yaml:1:10: version must be 1" in str(caught.value)


@pytest.mark.parametrize("name", ["yaml_surprises", "syntax_error", "two_documents"])
def test_other_broken_files_fail_to_load(name: str) -> None:
    with pytest.raises(MappingInvalid):
        load_source(BROKEN / f"{name}.yaml")
