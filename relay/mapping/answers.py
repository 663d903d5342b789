"""``inbound.answer`` and ``inbound.handshakes``: what a source tells its vendor, compiled once.

Some vendors need an exact acknowledgement (a SOAP vendor resends until it reads
its ``<ack>``), or a plain ``OK`` to a validation request before they send any
lead. Both are templates rendered in the same sandbox as mapping templates, with
a fixed set of variables, so lint can say which name would render empty.
"""
from __future__ import annotations

from typing import Any, Mapping

from relay.mapping.checks import Checker
from relay.mapping.conditions import compile_condition
from relay.mapping.model import AnswerSpec, Handshake, VendorAnswer
from relay.mapping.templates import ENVIRONMENT, compile_template
from relay.mapping.yamlload import Map, Node, Scalar

ANSWER_KEYS = ("status", "content_type", "body", "on_refused", "on_duplicate")
SPEC_KEYS = ("status", "content_type", "body")
HANDSHAKE_KEYS = ("method", "when", "auth", "answer")
METHODS = ("GET", "POST", "PUT")
# What an answer's body may read: the committed request's leads.
ANSWER_NAMES = frozenset({"lead_id", "lead_ids", "status", "source", "batch_id", "count", "duplicate",
                          "error"})
HANDSHAKE_NAMES = frozenset({"payload", "source", "method"})
DEFAULT_CONTENT_TYPE = "text/plain; charset=utf-8"


def compile_answers(ck: Checker, node: Node | None) -> tuple[VendorAnswer | None, tuple[Handshake, ...]]:
    """The source's own answer and handshakes; the inbound section's other keys are read elsewhere."""
    if not isinstance(node, Map):
        return None, ()
    answer = _vendor_answer(ck, node.get("answer"))
    handshakes = _handshakes(ck, node.get("handshakes"))
    return answer, handshakes


def render(spec: AnswerSpec, variables: Mapping[str, Any]) -> str:
    """The answer's body; raises TransformError (rule ``template``) when the template fails."""
    text: str = spec.body.render(variables)
    return text


# --- compiling ---

def _vendor_answer(ck: Checker, node: Node | None) -> VendorAnswer | None:
    where = "inbound.answer"
    if node is None:
        return None
    shape = ck.as_map(node, where)
    if shape is None:
        return None
    ck.keys(shape, ANSWER_KEYS, where)
    accepted = _spec(ck, shape, where, statuses=range(200, 300), inherit=None)
    variants = {}
    for key, statuses in (("on_refused", range(200, 500)), ("on_duplicate", range(200, 300))):
        variant = shape.get(key)
        if variant is not None:
            variant_shape = ck.as_map(variant, f"{where}.{key}")
            if variant_shape is not None:
                ck.keys(variant_shape, SPEC_KEYS, f"{where}.{key}")
                variants[key] = _spec(ck, variant_shape, f"{where}.{key}", statuses=statuses, inherit=accepted)
    if accepted is None:
        return None
    return VendorAnswer(accepted, refused=variants.get("on_refused"), duplicate=variants.get("on_duplicate"))


def _spec(ck: Checker, shape: Map, where: str, *, statuses: range, inherit: AnswerSpec | None,
          names: frozenset[str] = ANSWER_NAMES) -> AnswerSpec | None:
    status = inherit.status if inherit is not None else 200
    if (status_node := shape.get("status")) is not None:
        status = ck.integer(status_node, f"{where}.status", minimum=100) or 0
        if status and status not in statuses:
            ck.error(status_node, f"{where}.status must be from {statuses.start} to {statuses.stop - 1}, "
                                  f"not {status}", "invalid_option")
            status = 0
    content_type = inherit.content_type if inherit is not None else DEFAULT_CONTENT_TYPE
    if (type_node := shape.get("content_type")) is not None:
        content_type = _content_type(ck, type_node, f"{where}.content_type") or ""
    body_node = ck.need(shape, "body", where)
    body = _body(ck, body_node, f"{where}.body", names) if body_node is not None else None
    if not status or not content_type or body is None:
        return None
    return AnswerSpec(status=status, content_type=content_type, body=body)


def _content_type(ck: Checker, node: Node, where: str) -> str | None:
    text = ck.text(node, where)
    if text is None:
        return None
    mime = text.split(";", 1)[0].strip()
    if "/" not in mime or any(c.isspace() for c in mime) or "\n" in text or "\r" in text:
        ck.error(node, f"{where} must be a media type like text/xml or text/plain, not '{text}'",
                 "invalid_option")
        return None
    if "charset=" not in text.lower():
        return f"{text.strip()}; charset=utf-8"  # the relay always sends UTF-8
    return text.strip()


def _body(ck: Checker, node: Node, where: str, names: frozenset[str]) -> Any:
    if not isinstance(node, Scalar) or node.is_null:
        ck.error(node, f"{where} must be text (a template may use {', '.join(sorted(names))})", "wrong_type")
        return None
    try:
        template = compile_template(node.text)
    except ValueError as exc:
        ck.error(node, f"{where}: template error: {exc}", "template_error")
        return None
    for unknown in sorted(template.names - names - frozenset(ENVIRONMENT.globals)):
        ck.error(node, f"warning: {where} uses '{unknown}', which an answer does not define (it renders "
                       f"empty); it may use {', '.join(sorted(names))}", "unknown_name")
    return template


def _handshakes(ck: Checker, node: Node | None) -> tuple[Handshake, ...]:
    if node is None:
        return ()
    items = ck.as_list(node, "inbound.handshakes")
    if items is None:
        return ()
    found = (_handshake(ck, item, f"inbound.handshakes[{index}]") for index, item in enumerate(items))
    return tuple(handshake for handshake in found if handshake is not None)


def _handshake(ck: Checker, node: Node, where: str) -> Handshake | None:
    shape = ck.as_map(node, where)
    if shape is None:
        return None
    ck.keys(shape, HANDSHAKE_KEYS, where)
    methods = _methods(ck, shape.get("method"), f"{where}.method")
    when = None
    if (when_node := shape.get("when")) is not None:
        when = compile_condition(ck, when_node, f"{where}.when")
    auth = True
    if (auth_node := shape.get("auth")) is not None:
        auth = bool(ck.boolean(auth_node, f"{where}.auth") is not False)
    answer_node = ck.need(shape, "answer", where)
    answer_shape = ck.as_map(answer_node, f"{where}.answer") if answer_node is not None else None
    answer = None
    if answer_shape is not None:
        ck.keys(answer_shape, SPEC_KEYS, f"{where}.answer")
        answer = _spec(ck, answer_shape, f"{where}.answer", statuses=range(200, 300), inherit=None,
                       names=HANDSHAKE_NAMES)
    if methods is None or answer is None or (when_node is not None and when is None):
        return None
    return Handshake(methods=methods, when=when, answer=answer, auth=auth)


def _methods(ck: Checker, node: Node | None, where: str) -> tuple[str, ...] | None:
    if node is None:
        return ("GET",)
    chosen = [ck.choice(item, METHODS, where) for item in ck.as_items(node, where)]
    if not chosen or any(method is None for method in chosen):
        return None
    return tuple(method for method in chosen if method is not None)
