"""A passthrough token whose name clashes is reported on the call, never silently overwritten."""
from __future__ import annotations

from relay.mapping.compiler import compile_source
from relay.mapping.model import TrackdriveCall

MAPPING = """\
version: 1
trackdrive: {lead_token: "${T}"}
lead: {caller_id: {path: $.phone, transform: phone}}
data:
  city: {value: Boston}
passthrough: true
"""


def test_clashing_names_keep_the_first_value_and_say_so() -> None:
    source, problems = compile_source("clash", "clash.yaml", MAPPING)
    assert problems == []
    call = source.map_payload({"phone": "5122010001", "city": "Austin",
                               "Address": {"City": "Dallas"}, "address": {"city": "Waco"}})
    assert isinstance(call, TrackdriveCall)
    assert call.body["data"]["city"] == "Boston"
    assert call.body["data"]["address_city"] == "Dallas"
    notes = " ".join(call.notes)
    assert "city clashes" in notes and "address_city clashes" in notes
    assert TrackdriveCall.from_dict(call.to_dict()) == call


def test_a_call_without_clashes_has_no_notes_key() -> None:
    source, _ = compile_source("clash", "clash.yaml", MAPPING)
    call = source.map_payload({"phone": "5122010001", "state": "TX"})
    assert "notes" not in call.to_dict()
