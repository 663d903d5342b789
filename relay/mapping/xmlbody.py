"""XML bodies (plain XML and SOAP) as the dict a mapping's JSONPaths read.

The document becomes ``{root_name: element}``, each element read as:

- its local name is its key (``soap:Body`` is ``Body``); attributes are ``@name``;
- an element with only text is that text, stripped (``<Phone> 555 </Phone>`` is ``"555"``;
  ``<Phone/>`` is ``""``);
- an element with attributes or children is a dict; its own text, if any, is under ``#text``;
- children sharing a name become a list, in document order;
- a dict element whose namespace differs from its parent's (the root's, when it has one)
  carries the namespace URI under ``@xmlns``, so a mapping can tell two schemas apart;
  text-only elements stay plain text.

So a SOAP 1.1 lead reads as ``$.Envelope.Body.SubmitLead.Phone``.

defusedxml parses the bytes: a DTD (and with it every entity declaration, internal or
external) is refused, so neither entity expansion nor external references can run.
Depth and element count are bounded while parsing, before the tree is kept.
"""
from __future__ import annotations

import io
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as safe_tree

from relay.errors import MalformedBody

MAX_DEPTH = 64
MAX_ELEMENTS = 10_000  # elements and attributes together, as many as a form may have fields
TEXT = "#text"
NAMESPACE = "@xmlns"

_REFUSALS: tuple[tuple[type[Exception], str, str], ...] = (
    (defusedxml.DTDForbidden, "dtd", "a DTD (<!DOCTYPE ...>) is not accepted"),
    (defusedxml.EntitiesForbidden, "entity", "entity declarations are not accepted"),
    (defusedxml.ExternalReferenceForbidden, "external_reference", "external references are not accepted"),
)


def looks_like_xml(text: str) -> bool:
    """A sniffed body (text/plain, unlabelled) whose first character opens a tag."""
    return text[:1] == "<"


def xml_fields(body: bytes, content_type: str) -> dict[str, Any]:
    root = _parse(body, content_type)
    return {_local(root.tag): _element_value(root, parent_namespace=None)}


def _parse(body: bytes, content_type: str) -> Element:
    label = content_type or None
    try:
        return _bounded_tree(body, label)
    except ParseError as error:
        line, column = error.position
        message = str(error).split(":", 1)[0]
        raise MalformedBody(f"invalid XML at line {line} column {column + 1}: {message}",
                            content_type=label, line=line, column=column + 1) from None
    except tuple(kind for kind, _, _ in _REFUSALS) as error:
        reason, problem = next((reason, problem) for kind, reason, problem in _REFUSALS
                               if isinstance(error, kind))
        raise MalformedBody(f"XML body refused: {problem}", content_type=label, reason=reason) from None


def _bounded_tree(body: bytes, label: str | None) -> Element:
    depth = 0
    count = 0
    root: Element | None = None
    events = safe_tree.iterparse(io.BytesIO(body), events=("start", "end"), forbid_dtd=True)
    for event, element in events:
        if event == "end":
            depth -= 1
            continue
        root = element if root is None else root
        depth += 1
        count += 1 + len(element.attrib)
        if depth > MAX_DEPTH:
            raise MalformedBody(f"XML body refused: nested deeper than {MAX_DEPTH} elements",
                                content_type=label, reason="too_deep")
        if count > MAX_ELEMENTS:
            raise MalformedBody(f"XML body refused: more than {MAX_ELEMENTS} elements and attributes",
                                content_type=label, reason="too_many_elements")
    if root is None:
        raise MalformedBody("XML body has no root element", content_type=label)
    return root


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _namespace(name: str) -> str | None:
    return name[1:].split("}", 1)[0] if name.startswith("{") else None


def _element_value(element: Element, parent_namespace: str | None) -> Any:
    text = _own_text(element)
    if not len(element) and not element.attrib:
        return text
    value: dict[str, Any] = {}
    namespace = _namespace(element.tag)
    if namespace is not None and namespace != parent_namespace:
        value[NAMESPACE] = namespace
    for name, attribute in element.attrib.items():
        value[f"@{_local(name)}"] = attribute
    for child in element:
        if not isinstance(child.tag, str):  # comments and processing instructions
            continue
        key = _local(child.tag)
        item = _element_value(child, namespace)
        if key not in value:
            value[key] = item
        elif isinstance(value[key], list):
            value[key].append(item)
        else:
            value[key] = [value[key], item]
    if text:
        value[TEXT] = text
    return value


def _own_text(element: Element) -> str:
    parts = [element.text or ""]
    parts.extend(child.tail or "" for child in element)
    return "".join(parts).strip()
