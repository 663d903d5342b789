import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.errors import MalformedBody
from relay.mapping import prepare
from relay.mapping.body import parse_request
from relay.mapping.prepare import compile_step, nest_brackets, unwrap_lists


def run(steps, payload):
    for name, arg in steps:
        payload = compile_step(name, arg)(payload)
    return payload


def test_meta_field_data_pairs(sample):
    payload = parse_request(sample("facebook_lead_graph_object"))
    prepared = run([("pairs", {"at": "$.field_data", "name": "name", "value": "values"}),
                    ("unwrap_lists", None)], payload)
    assert prepared["field_data"]["phone_number"] == "+15125550147"
    assert prepared["field_data"]["how_many_people_need_coverage?"] == "2-3"
    assert prepared["custom_disclaimer_responses"] == {"checkbox_key": "tcpa_consent", "is_checked": "1"}


def test_typeform_answers_auto(sample):
    payload = parse_request(sample("typeform_form_response"))
    prepared = run([("pairs", {"at": "$.form_response.answers", "name": "field.ref", "value": "auto"})], payload)
    answers = prepared["form_response"]["answers"]
    assert answers["0b9c3f6e-52d1-4c7a-9e8f-1a2b3c4d5e6f"] == "Keisha"
    assert answers["c2d3e4f5-a6b7-4c8d-9e0f-1a2b3c4d5e6a"] == "+14045550193"
    assert answers["e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a8b"] == "keisha.brantley@example.com"
    assert answers["a9b8c7d6-e5f4-4a3b-9c2d-1e0f9a8b7c6d"] == "Georgia"
    assert answers["b7c6d5e4-f3a2-4b1c-9d0e-8f7a6b5c4d3e"] is True


def test_typeform_auto_other_types():
    answers = [
        {"type": "choices", "choices": {"labels": ["A", "B"]}, "field": {"ref": "multi"}},
        {"type": "choice", "choice": {"other": "Something else"}, "field": {"ref": "other"}},
        {"type": "number", "number": 3, "field": {"ref": "n"}},
        {"type": "date", "date": "2025-11-27", "field": {"ref": "d"}},
        {"type": "url", "url": "https://example.com", "field": {"ref": "u"}},
        {"type": "file_url", "file_url": "https://example.com/f", "field": {"ref": "f"}},
        {"type": "mystery", "field": {"ref": "m"}},
        {"type": "text", "text": "no ref", "field": {}},
    ]
    prepared = run([("pairs", {"at": "form_response.answers", "name": "field.ref", "value": "auto"})],
                   {"form_response": {"answers": answers}})
    assert prepared["form_response"]["answers"] == {
        "multi": ["A", "B"], "other": "Something else", "n": 3, "d": "2025-11-27",
        "u": "https://example.com", "f": "https://example.com/f", "m": None}


def test_pairs_defaults_first_wins_and_idempotence():
    step = compile_step("pairs", {"at": "$.items"})
    payload = {"items": [{"name": "a", "value": 1}, {"name": "a", "value": 2}, {"value": 3}, "junk"]}
    assert step(payload) == {"items": {"a": 1}}
    assert step(step(payload)) == {"items": {"a": 1}}
    assert step({"other": 1}) == {"other": 1}


def test_pairs_with_a_rich_path_converts_every_match(sample):
    payload = {"entry": [{"fields": [{"name": "a", "value": 1}]}, {"fields": [{"name": "b", "value": 2}]}]}
    prepared = compile_step("pairs", {"at": "$.entry[*].fields"})(payload)
    assert prepared == {"entry": [{"fields": {"a": 1}}, {"fields": {"b": 2}}]}


@pytest.mark.parametrize("arg", [None, "x", {"name": "n"}, {"at": "$.x", "extra": 1}, {"at": "$.[", "name": "n"},
                                 {"at": "$.x", "name": "a..b"}])
def test_pairs_bad_arguments(arg):
    with pytest.raises(ValueError):
        compile_step("pairs", arg)


def test_unbounce_decode_json(sample):
    payload = parse_request(sample("unbounce_form_submit"))
    prepared = run([("decode_json", "data.json"), ("unwrap_lists", None)], payload)
    assert prepared["data.json"]["phone_number"] == "(210) 555-0136"
    assert prepared["data.json"]["time_submitted"] == "04:21 PM UTC"
    assert prepared["page_name"] == "TX Health Quote"


def test_decode_json_leaves_missing_or_decoded_keys_alone():
    step = compile_step("decode_json", "data.json")
    assert step({"x": 1}) == {"x": 1}
    assert step({"data.json": {"a": 1}}) == {"data.json": {"a": 1}}


@pytest.mark.parametrize("text", ['{"a": ', "NaN", "[" * 100000])
def test_decode_json_invalid_is_malformed_body_naming_the_field(text):
    with pytest.raises(MalformedBody) as caught:
        compile_step("decode_json", "data.json")({"data.json": text})
    assert caught.value.details["field"] == "data.json"
    json.dumps(caught.value.to_dict())


def test_brackets():
    payload = {"fields[phone][value]": "5125550147", "fields[phone][type]": "mobile",
               "tags[]": ["a", "b"], "items[0][name]": "x", "items[1][name]": "y",
               "plain": "p", "broken[": "b", "plain[x]": "collides"}
    assert nest_brackets(payload) == {
        "fields": {"phone": {"value": "5125550147", "type": "mobile"}},
        "tags": ["a", "b"],
        "items": [{"name": "x"}, {"name": "y"}],
        "plain": "p",
        "broken[": "b",
        "plain[x]": "collides",
    }


def test_brackets_repeated_append_and_collisions_keep_literal_keys():
    assert nest_brackets({"a[]": "1"}) == {"a": ["1"]}
    assert nest_brackets({"a[b]": "1", "a[b][c]": "2"}) == {"a": {"b": "1"}, "a[b][c]": "2"}
    assert nest_brackets({"a[][n]": "1"}) == {"a": [{"n": "1"}]}
    assert nest_brackets({"0": "x"}) == {"0": "x"}  # the top level never turns into a list


BRACKET_KEYS = st.lists(st.builds(lambda head, parts: head + "".join(f"[{part}]" for part in parts),
                                  st.sampled_from(["a", "b", "a[b]", "c["]),
                                  st.lists(st.sampled_from(["b", "c", "0", "1", ""]), max_size=3)),
                        max_size=8, unique=True)


@settings(max_examples=300, deadline=None)
@given(BRACKET_KEYS, st.data())
def test_brackets_laid_out_once_place_every_value_as_one_by_one(keys, data):
    # A text-only payload takes the cached layout; the general walk is the reference.
    values = data.draw(st.lists(st.text(max_size=3), min_size=len(keys), max_size=len(keys)))
    payload = dict(zip(keys, values, strict=True))
    assert nest_brackets(payload) == prepare._nested(payload)
    again = {key: value + "!" for key, value in payload.items()}
    assert nest_brackets(again) == prepare._nested(again)


def test_brackets_on_a_real_form_post():
    from relay.mapping.model import InboundRequest
    body = (b"fields%5Bphone%5D%5Bvalue%5D=5125550147&fields%5Bemail%5D%5Bvalue%5D=a%40example.com"
            b"&utm%5B%5D=x&utm%5B%5D=y")
    payload = parse_request(InboundRequest(content_type="application/x-www-form-urlencoded", body=body))
    prepared = compile_step("brackets", None)(payload)
    assert prepared == {"fields": {"phone": {"value": "5125550147"}, "email": {"value": "a@example.com"}},
                        "utm": ["x", "y"]}


def test_unwrap_lists():
    assert unwrap_lists({"a": ["x"], "b": [["y"]], "c": [1, [2]], "d": [], "e": [{"f": ["g"]}]}) == {
        "a": "x", "b": "y", "c": [1, 2], "d": [], "e": {"f": "g"}}


def test_unknown_step_and_stray_arguments():
    with pytest.raises(ValueError, match="unknown prepare step"):
        compile_step("flatten", None)
    with pytest.raises(ValueError, match="takes no argument"):
        compile_step("brackets", "x")
    with pytest.raises(ValueError):
        compile_step("decode_json", None)


def test_brackets_of_a_large_payload_are_nested_without_a_cached_layout():
    payload = {f"fields[f{n}][value]": str(n) for n in range(prepare.LAYOUT_MAX_KEYS + 1)}
    before = prepare._layout_of.cache_info().currsize
    last = prepare.LAYOUT_MAX_KEYS
    assert nest_brackets(payload)["fields"][f"f{last}"] == {"value": str(last)}
    assert prepare._layout_of.cache_info().currsize == before
