import json

import pytest

from relay.mapping.flatten import TOKEN_NAME, flatten, token_name


@pytest.mark.parametrize("parts, expected", [
    (["utmSource"], "utm_source"),
    (["Address", "City"], "address_city"),
    (["items", 0, "name"], "items_0_name"),
    (["HTTPReferer"], "http_referer"),
    (["how_many_people_need_coverage?"], "how_many_people_need_coverage"),
    (["First Name"], "first_name"),
    (["1.3"], "f_1_3"),
    (["__weird__", "--key--"], "weird_key"),
    (["Núñez"], "nunez"),
    (["xxTrustedFormCertUrl"], "xx_trusted_form_cert_url"),
    (["???"], ""),
])
def test_token_name(parts, expected):
    name = token_name(parts)
    assert name == expected
    assert name == "" or TOKEN_NAME.match(name)


def test_flatten_nested_and_lists():
    payload = {"first_name": "Rosa", "address": {"City": "Austin", "zip": "78751"},
               "items": [{"name": "a"}, {"name": "b"}], "count": 2, "ok": False, "ratio": 0.5}
    tokens, clashes = flatten(payload)
    assert tokens == {"first_name": "Rosa", "address_city": "Austin", "address_zip": "78751",
                      "items_0_name": "a", "items_1_name": "b", "count": 2, "ok": False, "ratio": 0.5}
    assert clashes == []


def test_flatten_leaves_out_empty_values():
    tokens, _ = flatten({"a": None, "b": "", "c": "  ", "d": [], "e": {}, "f": {"g": None}, "h": 0})
    assert tokens == {"h": 0}


def test_flatten_encodes_what_is_deeper_than_max_depth():
    payload = {"a": {"b": {"c": {"d": 1}}}, "x": {"y": [1, 2]}}
    tokens, _ = flatten(payload, max_depth=3)
    assert tokens["a_b_c"] == '{"d":1}'
    assert tokens["x_y_0"] == 1
    tokens, _ = flatten(payload, max_depth=1)
    assert json.loads(tokens["a"]) == {"b": {"c": {"d": 1}}}
    assert json.loads(tokens["x"]) == {"y": [1, 2]}


def test_flatten_include_exclude_globs():
    payload = {"utm_source": "fb", "utm_medium": "cpc", "lp_campaign_key": "secret", "address": {"city": "A"}}
    tokens, _ = flatten(payload, include=["utm_*", "address_*", "lp_*"], exclude=["lp_campaign_key", "utm_medium"])
    assert tokens == {"utm_source": "fb", "address_city": "A"}


def test_flatten_skips_explicitly_mapped_subtrees():
    payload = {"phone": "1", "address": {"city": "A", "zip": "Z"}, "items": [{"n": 1}, {"n": 2}]}
    tokens, _ = flatten(payload, skip={("phone",), ("address", "zip"), ("items", 0)})
    assert tokens == {"address_city": "A", "items_1_n": 2}


def test_flatten_reports_clashes_and_keeps_the_first():
    payload = {"utmSource": "first", "utm_source": "second", "UTM Source": "third", "address": {"city": "A"},
               "address_city": "B"}
    tokens, clashes = flatten(payload)
    assert tokens == {"utm_source": "first", "address_city": "A"}
    assert clashes == ["utm_source", "address_city"]


def test_flatten_of_non_containers_is_empty():
    assert flatten("text") == ({}, [])
    assert flatten(None) == ({}, [])


def test_flatten_real_sample(sample):
    from relay.mapping.body import parse_request
    tokens, clashes = flatten(parse_request(sample("leadspedia_get_querystring")), exclude=["lp_campaign_key"])
    assert tokens["first_name"] == "Gloria" and tokens["last_name"] == "Nuñez"
    assert "lp_campaign_key" not in tokens and tokens["lp_s1"] == "fb"
    assert all(TOKEN_NAME.match(name) for name in tokens)
    assert clashes == []
