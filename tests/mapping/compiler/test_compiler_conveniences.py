"""Mapping conveniences: ignore_case, present, mixed fallbacks, choice labels, possible phones, lint."""
from __future__ import annotations

import pytest

from relay.mapping import Refusal, TrackdriveCall
from relay.mapping.transforms import TransformError, compile_transform

from compiler_helpers import codes, compile_text, source_of


def call_of(outcome: object) -> TrackdriveCall:
    assert isinstance(outcome, TrackdriveCall), outcome
    return outcome


# --- ignore_case ---

@pytest.mark.parametrize("key", ["phone", "Phone", "PHONE", "phone ", " pHoNe"])
def test_ignore_case_finds_every_spelling(key: str) -> None:
    source = source_of("""
        lead:
          caller_id: {path: $.contact.phone, ignore_case: true, transform: phone}
        """)
    call = call_of(source.map_payload({"Contact": {key: "(512) 555-0142"}}))
    assert call.body["caller_id"] == "+15125550142"


def test_exact_spelling_wins_over_a_folded_one() -> None:
    source = source_of("""
        lead:
          caller_id: $.phone
        data:
          name: {path: $.name, ignore_case: true}
        """)
    call = call_of(source.map_payload({"phone": "+15125550142", "NAME": "shout", "name": "exact"}))
    assert call.body["data"]["name"] == "exact"


def test_ignore_case_needs_a_simple_path_and_a_path() -> None:
    _, problems = compile_text("""
        lead:
          caller_id: {path: "$.items[*].phone", ignore_case: true}
          email: {template: "{{ payload.email }}", ignore_case: true}
        """)
    messages = " ".join(str(problem) for problem in problems)
    assert "simple paths only" in messages
    assert "ignore_case applies to path, not template" in messages


def test_without_ignore_case_the_spelling_must_match() -> None:
    source = source_of("""
        lead:
          caller_id: {path: $.phone, required: true}
        """)
    assert isinstance(source.map_payload({"Phone": "+15125550142"}), Refusal)


# --- present ---

def test_present_turns_emptiness_into_a_boolean() -> None:
    source = source_of("""
        lead:
          caller_id: $.phone
        data:
          has_email: {path: $.email, transform: present}
          consented: {path: $.consent, transform: {present: {true: "yes", false: "no"}}}
        """)
    empty = call_of(source.map_payload({"phone": "+15125550142", "email": "  "}))
    assert empty.body["data"] == {"has_email": False, "consented": "no"}
    full = call_of(source.map_payload({"phone": "+15125550142", "email": "a@b.co", "consent": ["x"]}))
    assert full.body["data"] == {"has_email": True, "consented": "yes"}


def test_present_argument_is_checked() -> None:
    with pytest.raises(ValueError, match="both 'true' and 'false'"):
        compile_transform("present", {"true": "yes"})


# --- fallbacks mixing paths, templates and constants ---

def test_fallbacks_mix_paths_templates_and_a_constant() -> None:
    source = source_of("""
        lead:
          caller_id: {path: [$.phone, "{{ payload.area }}{{ payload.number }}"], transform: phone}
        data:
          source: [$.source, "{{ payload.utm }}", unknown]
        """)
    by_path = call_of(source.map_payload({"phone": "5125550142", "source": "web"}))
    assert by_path.body["caller_id"] == "+15125550142"
    assert by_path.body["data"]["source"] == "web"
    by_template = call_of(source.map_payload({"area": "512", "number": "5550143", "utm": "fb"}))
    assert by_template.body["caller_id"] == "+15125550143"
    assert by_template.body["data"]["source"] == "fb"
    by_constant = call_of(source.map_payload({"phone": "5125550142"}))
    assert by_constant.body["data"]["source"] == "unknown"


def test_fallbacks_read_earlier_values_and_name_themselves_when_required() -> None:
    source = source_of("""
        lead:
          caller_id: [$.phone, "{{ payload.area }}{{ payload.number }}"]
        data:
          first_name: $.first
          greeting: ["$.greeting", "Hi {{ first_name }}"]
        """)
    call = call_of(source.map_payload({"phone": "+15125550142", "first": "Ada"}))
    assert call.body["data"]["greeting"] == "Hi Ada"
    required = source_of("""
        lead:
          caller_id: {path: [$.phone, "{{ payload.tel }}"], required: true}
        """)
    refusal = required.map_payload({})
    assert isinstance(refusal, Refusal)
    assert refusal.rule == "required"
    assert "every fallback was empty" in refusal.message


def test_a_constant_fallback_must_come_last() -> None:
    _, problems = compile_text("""
        lead:
          caller_id: [$.phone, phone, $.tel]
        """)
    assert "must come last" in " ".join(str(problem) for problem in problems)


# --- choice: an id looked up in the options the payload carries ---

FORM = {
    "form": {"fields": [
        {"id": "f1", "options": [{"id": "1", "label": "Auto"}, {"id": "2", "label": "Home"}]},
        {"id": "f2", "options": [{"id": 3, "label": "Life"}]},
    ]},
    "phone": "+15125550142",
}


def test_choice_turns_ids_into_their_labels() -> None:
    source = source_of("""
        lead:
          caller_id: $.phone
        data:
          product: {path: $.answer, transform: {choice: {options: "$.form.fields[*].options", id: id, label: label}}}
          products: {path: $.answers, transform: [{choice: {options: "$.form.fields[*].options"}}, join]}
        """)
    call = call_of(source.map_payload({**FORM, "answer": "2", "answers": ["1", 3]}))
    assert call.body["data"] == {"product": "Home", "products": "Auto, Life"}


def test_choice_miss_keeps_refuses_or_defaults() -> None:
    keep = source_of("""
        lead:
          caller_id: $.phone
        data:
          product: {path: $.answer, transform: {choice: {options: "$.form.fields[*].options"}}}
        """)
    assert call_of(keep.map_payload({**FORM, "answer": "9"})).body["data"]["product"] == "9"
    refuse = source_of("""
        lead:
          caller_id: $.phone
        data:
          product: {path: $.answer, transform: {choice: {options: "$.form.fields[*].options", default: refuse}}}
        """)
    refusal = refuse.map_payload({**FORM, "answer": "9"})
    assert isinstance(refusal, Refusal)
    assert refusal.rule == "choice"


def test_choice_argument_is_checked() -> None:
    with pytest.raises(ValueError, match="options"):
        compile_transform("choice", {"id": "id"})
    _, problems = compile_text("""
        lead:
          caller_id: {path: $.phone, transform: {choice: {options: "$.[", id: id}}}
        """)
    assert "bad_argument" in codes(problems)


# --- phone: possible numbers ---

def test_phone_accepts_a_possible_but_unassigned_number_only_when_asked() -> None:
    unassigned = "+1 999 201 1234"  # NANP length and layout, but an area code not in service
    with pytest.raises(TransformError):
        compile_transform("phone", None)(unassigned)
    assert compile_transform("phone", {"accept": "possible"})(unassigned) == "+19992011234"
    assert compile_transform("phone", {"region": "GB", "accept": "possible"})("020 1234 567") == "+44201234567"
    with pytest.raises(TransformError, match="not a possible"):
        compile_transform("phone", {"accept": "possible"})("12345")
    with pytest.raises(ValueError, match="valid or possible"):
        compile_transform("phone", {"accept": "maybe"})


# --- lint ---

def test_statement_without_output_is_a_warning() -> None:
    source, problems = compile_text("""
        lead:
          caller_id: $.phone
        data:
          tier: "{% if payload.vip %}gold{% endif %}"
        """)
    assert source is not None
    assert codes(problems) == ["template_as_constant"]
    assert "{{ }}" in str(problems[0])
