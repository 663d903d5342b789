"""A filter of string equalities walked directly gives exactly what jsonpath-ng finds."""
from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from relay.mapping.paths import FilteredPath, compile_path

PATHS = (
    "$.data.fields[?(@.type=='A')].value",
    "$.data.fields[?(@.type=='A' && @.label=='x')].value",
    '$.data.fields[?(@.label=="x")]',
    "$.data.fields[?(@.type=='B')].value.inner",
    "$.data[?(@.type=='A')].value",
)
SCALARS = st.one_of(st.sampled_from(["A", "B", "x", "y", "1"]), st.integers(0, 2), st.booleans(), st.none())
ELEMENT = st.dictionaries(st.sampled_from(["type", "label", "value"]),
                          st.one_of(SCALARS, st.dictionaries(st.just("inner"), SCALARS, max_size=1)), max_size=3)
ELEMENTS = st.one_of(st.lists(st.one_of(ELEMENT, SCALARS), max_size=5),
                     st.dictionaries(st.sampled_from(["p", "q", "r"]), ELEMENT, max_size=3), SCALARS)
PAYLOADS = st.fixed_dictionaries({"data": st.one_of(st.fixed_dictionaries({"fields": ELEMENTS}), ELEMENTS)})


def test_the_vendor_filter_forms_are_walked_directly() -> None:
    assert all(isinstance(compile_path(text), FilteredPath) for text in PATHS)
    assert not isinstance(compile_path("$.data.fields[?(@.n > 1)].value"), FilteredPath)
    assert not isinstance(compile_path("$.data.fields[?(@.type=='A' || @.type=='B')].value"), FilteredPath)


@settings(max_examples=400, deadline=None)
@given(payload=PAYLOADS)
def test_a_direct_walk_finds_what_jsonpath_ng_finds(payload: dict[str, Any]) -> None:
    for text in PATHS:
        path = compile_path(text)
        assert path.values(payload) == [match.value for match in path.expression.find(payload)], text
