"""Mapping payloads with compiled sources: values, transforms, templates, refusals."""
from __future__ import annotations

from relay.mapping import Drop, Refusal, TrackdriveCall

from compiler_helpers import codes, compile_text, source_of


def call_of(outcome: object) -> TrackdriveCall:
    assert isinstance(outcome, TrackdriveCall), outcome
    return outcome


def test_all_value_forms() -> None:
    source = source_of("""
        lead:
          caller_id: [$.phone, $.phone_home]
          email: {path: $.email, transform: [strip, email]}
        data:
          first_name: $.first_name
          spaced: $['First Name']
          dotted: $['1.3']
          nested: $.address.city
          constant: hello
          explicit_constant: {value: "007"}
          defaulted: {path: $.missing, default: unknown}
          many: $.tags[*]
          first_tag:
            path: $.tags[*]
            transform: first
        """)
    call = call_of(source.map_payload({
        "phone_home": "+12105550136", "email": " Ana@EXAMPLE.com ", "first_name": "Ana",
        "First Name": "Ana B", "1.3": "x", "address": {"city": "Austin"}, "tags": ["a", "b"]}))
    assert call.body["caller_id"] == "+12105550136"
    assert call.body["email"] == "ana@example.com"
    assert call.body["data"] == {
        "first_name": "Ana", "spaced": "Ana B", "dotted": "x", "nested": "Austin",
        "constant": "hello", "explicit_constant": "007", "defaulted": "unknown",
        "many": ["a", "b"], "first_tag": "a"}


def test_empty_values_are_left_out() -> None:
    source = source_of("""
        lead:
          caller_id: $.phone
        data:
          blank: $.blank
          missing: $.missing
          empty_list: $.items
        """)
    call = call_of(source.map_payload({"phone": "+12105550136", "blank": "  ", "items": []}))
    assert "data" not in call.body or call.body["data"] == {}


def test_required_refusal_names_source_field_paths_and_rule() -> None:
    source = source_of("""
        lead:
          caller_id: {path: [$.phone, $.phone_home], transform: phone, required: true}
        """)
    refusal = source.map_payload({"phone": "", "first_name": "Ana"})
    assert refusal == Refusal(
        "acme", "caller_id", "required",
        "caller_id is required but every path was empty: $.phone, $.phone_home",
        ("$.phone", "$.phone_home"))
    assert refusal.to_dict()["code"] == "lead_refused"


def test_transform_failure_refuses_with_its_rule() -> None:
    source = source_of("""
        lead:
          caller_id: {path: $.phone, transform: phone}
          email: {path: $.email, transform: email}
        """)
    refusal = source.map_payload({"phone": "12", "email": "ana@example.com"})
    assert isinstance(refusal, Refusal)
    assert (refusal.field, refusal.rule, refusal.paths) == ("caller_id", "phone", ("$.phone",))
    assert refusal.message.startswith("caller_id: ") and "$.phone" in refusal.message


def test_payload_value_breaking_a_trackdrive_rule_refuses() -> None:
    source = source_of("""
        lead:
          caller_id: $.phone
          hours_to_expire: $.ttl
        """)
    refusal = source.map_payload({"phone": "+12105550136", "ttl": "soon"})
    assert isinstance(refusal, Refusal)
    assert (refusal.field, refusal.rule) == ("hours_to_expire", "integer")
    ok = call_of(source.map_payload({"phone": "+12105550136", "ttl": "24"}))
    assert ok.body["hours_to_expire"] == 24


def test_templates_see_values_earlier_templates_and_payload() -> None:
    source = source_of("""
        lead:
          caller_id: $.phone
        data:
          full_name: "{{ first_name }} {{ last_name }}"
          greeting: "Hello {{ full_name }} from {{ payload.city }}"
          first_name: {path: $.first, transform: title}
          last_name: $.last
        """)
    call = call_of(source.map_payload({"phone": "+12105550136", "first": "ana", "last": "Lee",
                                       "city": "Austin"}))
    assert call.body["data"]["full_name"] == "Ana Lee"
    assert call.body["data"]["greeting"] == "Hello Ana Lee from Austin"


def test_undefined_template_name_is_a_warning_only() -> None:
    source, problems = compile_text("""
        lead:
          caller_id: $.phone
        data:
          note: "{{ nothing_here }}"
        """)
    assert source is not None
    assert codes(problems) == ["unknown_name"]


def test_template_that_fails_refuses_with_rule_template() -> None:
    source = source_of("""
        lead:
          caller_id: $.phone
        data:
          broken: "{{ payload.phone.__class__ }}"
        """)
    refusal = source.map_payload({"phone": "+12105550136", "items": []})
    assert isinstance(refusal, Refusal)
    assert (refusal.field, refusal.rule) == ("broken", "template")


def test_drop_rules_come_first() -> None:
    source = source_of("""
        lead:
          caller_id: {path: $.phone, required: true}
        drop:
          - when: {path: $.email, matches: '@example\\.test$'}
            reason: vendor test lead
        """)
    assert source.map_payload({"email": "qa@example.test"}) == Drop("acme", "vendor test lead")
    assert isinstance(source.map_payload({"email": "ana@example.com"}), Refusal)


def test_conditions() -> None:
    source = source_of("""
        lead:
          caller_id: $.phone
        drop:
          - when: {path: $.kind, equals: TEST, ignore_case: true}
            reason: equals
          - when: {path: $.state, in: [AK, HI]}
            reason: in
          - when: {path: $.debug, exists: true}
            reason: exists
          - when: {all: [{path: $.a, equals: "1"}, {not: {path: $.b, empty: false}}]}
            reason: all-not-empty
          - when: {any: [{path: $.flag, equals: "true"}, {path: $.n, equals: "5"}]}
            reason: any
        """)
    base = {"phone": "+12105550136"}
    reasons = {
        "equals": {"kind": "test"}, "in": {"state": "HI"}, "exists": {"debug": None},
        "all-not-empty": {"a": 1, "b": ""}, "any": {"flag": True},
    }
    for reason, extra in reasons.items():
        outcome = source.map_payload({**base, **extra})
        assert outcome == Drop("acme", reason), reason
    assert source.map_payload({**base, "n": 5}) == Drop("acme", "any")
    assert isinstance(source.map_payload({**base, "a": "1", "b": "x", "state": "TX"}), TrackdriveCall)


def test_routes_change_token_base_url_options_and_action() -> None:
    source = source_of("""
        lead:
          caller_id: $.phone
          hours_to_expire: 24
        data:
          product: $.product
        routes:
          - name: life
            when: {path: $.product, equals: life, ignore_case: true}
            trackdrive:
              lead_token: ${ACME_LIFE_LEAD_TOKEN}
              base_url: https://life.trackdrive.com
            lead: {hours_to_expire: 48}
          - name: opt-out
            when: {path: $.unsubscribe, equals: "yes"}
            action: caller_opt_out
            trackdrive: {auth_token: "${ACME_AUTH_TOKEN}"}
            lead: {caller_id: $.phone}
        """)
    plain = call_of(source.map_payload({"phone": "+12105550136", "product": "auto"}))
    assert (plain.route, plain.base_url, plain.secrets) == (None, None, {"lead_token": "ACME_LEAD_TOKEN"})
    assert plain.body["hours_to_expire"] == 24
    life = call_of(source.map_payload({"phone": "+12105550136", "product": "LIFE"}))
    assert life.route == "life"
    assert life.base_url == "https://life.trackdrive.com"
    assert life.secrets == {"lead_token": "ACME_LIFE_LEAD_TOKEN"}
    assert life.body["hours_to_expire"] == 48
    opt_out = call_of(source.map_payload({"phone": "+12105550136", "unsubscribe": "yes"}))
    assert (opt_out.action, opt_out.route) == ("caller_opt_out", "opt-out")
    assert opt_out.path == "/api/v1/leads/%2B12105550136/caller_opt_out"
    assert source.required_env() == {"ACME_LEAD_TOKEN", "ACME_LIFE_LEAD_TOKEN", "ACME_AUTH_TOKEN"}


def test_non_create_action_without_caller_id_refuses() -> None:
    source = source_of("""
        action: caller_remove
        lead:
          caller_id: $.phone
        """)
    refusal = source.map_payload({"other": "x"})
    assert isinstance(refusal, Refusal)
    assert (refusal.field, refusal.rule, refusal.paths) == ("caller_id", "required", ("$.phone",))


def test_meta_leadgen_notification_is_refusable() -> None:
    source = source_of("""
        lead:
          caller_id:
            path: $.entry[0].changes[0].value.phone_number
            transform: phone
            required: true
        """)
    notification = {"object": "page", "entry": [{"id": "1", "changes": [
        {"field": "leadgen", "value": {"leadgen_id": "1092837465019283", "form_id": "8"}}]}]}
    refusal = source.map_payload(notification)
    assert isinstance(refusal, Refusal) and refusal.rule == "required"


def test_passthrough_skips_consumed_keys_and_mapped_values_win() -> None:
    source = source_of("""
        lead:
          caller_id: $.phone
        data:
          city: {path: $.city, transform: upper}
          utm_source: {value: fixed}
        passthrough:
          exclude: [secret_*]
        """)
    call = call_of(source.map_payload({
        "phone": "+12105550136", "city": "austin", "utm_source": "google",
        "Address": {"Zip Code": "78209"}, "secret_key": "x"}))
    assert call.body["data"] == {"city": "AUSTIN", "utm_source": "fixed", "address_zip_code": "78209"}


def test_passthrough_true_copies_everything_unmapped() -> None:
    source = source_of("""
        lead:
          caller_id: $.phone
        passthrough: true
        """)
    call = call_of(source.map_payload({"phone": "+12105550136", "gclid": "abc"}))
    assert call.body["data"] == {"gclid": "abc"}


def test_prepare_steps_run_first_and_keep_the_callers_payload() -> None:
    source = source_of("""
        prepare:
          - decode_json: data.json
          - unwrap_lists
        lead:
          caller_id: {path: "$['data.json'].phone", transform: phone}
        """)
    payload = {"data.json": '{"phone": ["(210) 555-0136"]}'}
    call = call_of(source.map_payload(payload))
    assert call.body["caller_id"] == "+12105550136"
    assert payload == {"data.json": '{"phone": ["(210) 555-0136"]}'}


def test_map_payload_never_raises() -> None:
    source = source_of("""
        prepare: [decode_json: blob]
        lead:
          caller_id: {path: $.phone, transform: phone, required: true}
        data:
          n: {path: $.n, transform: integer}
        """)
    odd = [None, [], "text", 5, {"blob": "{not json"}, {"phone": ["+12105550136", "x"]},
           {"phone": {"a": 1}}, {"phone": "+12105550136", "n": [1, 2]}]
    for payload in odd:
        outcome = source.map_payload(payload)  # type: ignore[arg-type]
        assert isinstance(outcome, (Refusal, TrackdriveCall, Drop)), payload


def test_constant_options_are_checked_at_load() -> None:
    _, problems = compile_text("""
        lead:
          caller_id: $.phone
          blocked: maybe
          schedule_callback_at: tomorrow
          update_only: "yes"
        """)
    assert [(p.line, p.code) for p in problems] == [(7, "invalid_option"), (8, "invalid_option")]


def test_version_is_required() -> None:
    _, problems = compile_text("""
        trackdrive:
          lead_token: ${A}
        lead: {caller_id: $.phone}
        """, header=False)
    assert [(p.line, p.column, p.code) for p in problems] == [(2, 1, "bad_version")]
