"""Every shipped mapping lints clean and passes its own test cases (mappings/*.test.yaml)."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from relay.intake.lint import lint_paths, load_directory
from relay.intake.testing import CaseResult, case_names, discover, run_cases
from relay.mapping import TrackdriveCall, load_source
from relay.mapping.httpfile import parse_http_file
from tests.support.stack import SHIPPED_SECRETS

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"

# Every variable the shipped mappings reference (the made-up values the test relays run with);
# lint must find each one set.
SHIPPED_ENV = {name: "test-value" for name in SHIPPED_SECRETS}

SHIPPED_SOURCES = {"facebook-lead", "facebook-leadgen", "typeform", "unbounce", "leadspedia",
                   "generic-json", "generic-form", "hubspot-contacts",
                   "google-ads", "jotform", "elementor-basic", "elementor-advanced", "gravity-forms", "hubspot",
                   "tally", "leadconduit", "boberdoo", "wpforms", "contact-form-7", "formstack", "zapier",
                   "instapage"}


def shipped_cases() -> list:
    params = []
    for test_file in discover([MAPPINGS]):
        names = case_names(test_file) or ["(test file)"]
        for name in names:
            params.append(pytest.param(test_file, name, id=f"{test_file.name[:-len('.test.yaml')]}::{name}"))
    return params


@cache
def results_of(test_file: Path) -> dict[str, CaseResult]:
    return {result.name: result for result in run_cases(test_file)}


@pytest.mark.parametrize("test_file, name", shipped_cases())
def test_shipped_case(test_file: Path, name: str) -> None:
    result = results_of(test_file)[name]
    assert result.passed, f"{result.label}\n{result.diff}"


def test_shipped_mappings_lint_clean() -> None:
    problems = lint_paths([str(MAPPINGS)], env=SHIPPED_ENV)
    assert [str(problem) for problem in problems] == []


def test_shipped_mappings_need_no_other_variables() -> None:
    sources, problems = load_directory(MAPPINGS)
    assert problems == []
    assert set(sources) == SHIPPED_SOURCES
    needed = set().union(*(source.required_env() for source in sources.values()))
    assert needed == set(SHIPPED_ENV)


def test_every_shipped_mapping_has_cases() -> None:
    tested = {path.name[: -len(".test.yaml")] for path in discover([MAPPINGS])}
    assert tested == SHIPPED_SOURCES
    for test_file in discover([MAPPINGS]):
        assert len(case_names(test_file)) >= 3, test_file


def test_the_campaign_key_never_reaches_the_call() -> None:
    fixture = MAPPINGS / "fixtures" / "leadspedia" / "leadspedia_get_querystring.http"
    request = parse_http_file(fixture.read_bytes())
    campaign_key = parse_qs(request.query)["lp_campaign_key"][0]
    call = load_source(MAPPINGS / "leadspedia.yaml").map(request)
    assert isinstance(call, TrackdriveCall)
    assert campaign_key not in json.dumps(call.to_dict())
