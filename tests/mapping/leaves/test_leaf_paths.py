import pytest
from jsonpath_ng.ext import parse

from relay.mapping.paths import compile_path, is_empty

PAYLOAD = {
    "a": {"b": [{"c": 1}, {"c": 2}]},
    "First Name": "Rosa",
    "1.3": "dotted",
    "fields[phone]": "bracketed",
    "q5_phoneNumber": "+15125550147",
    "first-name": "dash",
    "items": [{"name": "phone", "value": "1"}, {"name": "email", "value": "x@example.com"}],
    "none": None,
}


@pytest.mark.parametrize("text, keys, expected", [
    ("$.a.b[0].c", ("a", "b", 0, "c"), [1]),
    ("$.a.b[-1].c", ("a", "b", -1, "c"), [2]),
    ("$['First Name']", ("First Name",), ["Rosa"]),
    ('$["First Name"]', ("First Name",), ["Rosa"]),
    ("$['1.3']", ("1.3",), ["dotted"]),
    ('$."1.3"', ("1.3",), ["dotted"]),
    ("$['fields[phone]']", ("fields[phone]",), ["bracketed"]),
    ("$.q5_phoneNumber", ("q5_phoneNumber",), ["+15125550147"]),
    ("$.first-name", ("first-name",), ["dash"]),
    ("$.none", ("none",), [None]),
    ("$.missing", ("missing",), []),
    ("$.a.b.c", ("a", "b", "c"), []),  # a name never indexes a list
    ("$.a[0]", ("a", 0), []),  # an index never indexes a dict
    ("$.a.b[5]", ("a", "b", 5), []),
    ("$", (), [PAYLOAD]),
])
def test_simple_paths_walk_directly(text, keys, expected):
    path = compile_path(text)
    assert path.simple_keys == keys
    assert path.values(PAYLOAD) == expected
    if text != "$":
        assert path.values(PAYLOAD) == [m.value for m in parse(text).find(PAYLOAD)]


@pytest.mark.parametrize("text, expected", [
    ("$.a.b[*].c", [1, 2]),
    ("$..c", [1, 2]),
    ("$.items[?(@.name=='phone')].value", ["1"]),
    ("$.a.b[0:1].c", [1]),
])
def test_rich_paths_use_jsonpath_ng(text, expected):
    path = compile_path(text)
    assert path.simple_keys is None
    assert path.values(PAYLOAD) == expected
    assert path.text == text


def test_simple_path_walk_never_raises_on_scalars():
    assert compile_path("$.a.b").values("text") == []
    assert compile_path("$[0]").values(None) == []


@pytest.mark.parametrize("text", ["$.", "$.a[", "$[?(@.x==]", "$$"])
def test_bad_paths_raise_value_error(text):
    with pytest.raises(ValueError) as caught:
        compile_path(text)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("value, empty", [
    (None, True), ("", True), ("  \t", True), ([], True), ({}, True),
    ("x", False), (0, False), (False, False), ([None], False), ({"a": None}, False),
])
def test_is_empty(value, empty):
    assert is_empty(value) is empty
