"""inbound.answer and inbound.handshakes are compiled and linted when the mapping loads."""
from __future__ import annotations

from compiler_helpers import codes, compile_text, source_of

LEAD = """
lead:
  caller_id: $.phone
"""


def test_answer_compiles_with_defaults_and_inherits_into_variants() -> None:
    source = source_of(LEAD + """
inbound:
  answer:
    content_type: text/xml
    body: "<ack>{{ lead_id }}</ack>"
    on_refused: {body: "<nack/>"}
""")
    answer = source.inbound.answer
    assert answer is not None
    assert (answer.accepted.status, answer.accepted.content_type) == (200, "text/xml; charset=utf-8")
    assert answer.refused is not None and answer.refused.content_type == "text/xml; charset=utf-8"
    assert answer.duplicate is None


def test_answer_problems_are_reported_with_their_place() -> None:
    _, problems = compile_text(LEAD + """
inbound:
  answer:
    status: 500
    content_type: "not a type"
    body: "{{ lead_id"
    on_duplicate: {body: ok, colour: red}
""")
    messages = "\n".join(str(problem) for problem in problems)
    assert "inbound.answer.status must be from 200 to 299" in messages
    assert "inbound.answer.content_type must be a media type" in messages
    assert "inbound.answer.body: template error" in messages
    assert "colour" in messages
    assert all(":" in str(problem) and problem.line > 1 for problem in problems)


def test_unknown_answer_variable_is_a_warning() -> None:
    source, problems = compile_text(LEAD + """
inbound:
  answer: {body: "{{ lead }}"}
""")
    assert source is not None
    assert codes(problems) == ["unknown_name"]
    assert "lead_ids" in str(problems[0])  # the message lists what an answer may use


def test_handshakes_compile_and_match_method_and_condition() -> None:
    source = source_of(LEAD + """
inbound:
  handshakes:
    - {method: GET, auth: false, answer: {body: "{{ payload.challenge }}"}}
    - method: [POST]
      when: {path: $.type, equals: ping}
      answer: {status: 204, body: ""}
""")
    anyget, ping = source.inbound.handshakes
    assert (anyget.methods, anyget.auth, anyget.when) == (("GET",), False, None)
    assert anyget.matches("GET", {}) and not anyget.matches("POST", {})
    assert ping.auth and ping.matches("POST", {"type": "ping"}) and not ping.matches("POST", {"type": "lead"})


def test_handshake_problems() -> None:
    _, problems = compile_text(LEAD + """
inbound:
  handshakes:
    - {method: DELETE, answer: {body: x}}
    - {when: {path: $.a, equals: b}}
    - {answer: {status: 302, body: x}}
    - {answer: {body: "{{ lead_id }}"}}
""")
    messages = "\n".join(str(problem) for problem in problems)
    assert "inbound.handshakes[0].method must be one of GET, POST, PUT" in messages
    assert "inbound.handshakes[1]" in messages and "answer" in messages
    assert "inbound.handshakes[2].answer.status must be from 200 to 299" in messages
    assert "uses 'lead_id'" in messages  # a handshake stores no lead
