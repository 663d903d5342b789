"""XML and SOAP bodies: the dict form mappings read, and every hostile document a clear 400."""
import pytest

from relay.errors import MalformedBody
from relay.mapping import xmlbody
from relay.mapping.body import parse_request
from relay.mapping.model import InboundRequest

SOAP_11 = b"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Header><Auth>ignored</Auth></soap:Header>
  <soap:Body>
    <lead:SubmitLead xmlns:lead="urn:acme:leads">
      <lead:Phone>(512) 555-0142</lead:Phone>
      <lead:FirstName>Ada</lead:FirstName>
    </lead:SubmitLead>
  </soap:Body>
</soap:Envelope>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE lead [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<lead><phone>&secret;</phone></lead>"""


def parse(body, content_type="application/xml", query=""):
    return parse_request(InboundRequest(content_type=content_type, body=body, query=query))


@pytest.mark.parametrize("content_type", ["text/xml; charset=utf-8", "application/xml",
                                          "application/soap+xml", "application/vnd.acme.lead+xml"])
def test_soap_envelope_reads_by_local_names(content_type):
    payload = parse(SOAP_11, content_type)
    lead = payload["Envelope"]["Body"]["SubmitLead"]
    assert lead["Phone"] == "(512) 555-0142"
    assert lead["FirstName"] == "Ada"
    assert payload["Envelope"]["@xmlns"] == "http://schemas.xmlsoap.org/soap/envelope/"
    assert lead["@xmlns"] == "urn:acme:leads"
    assert "@xmlns" not in payload["Envelope"]["Body"]  # the same namespace as its parent


def test_attributes_text_and_mixed_content():
    payload = parse(b'<lead id="42"><name first="Ada" last="Lovelace"/><note lang="en"> call after 5 </note>'
                    b"<empty/></lead>")
    assert payload == {"lead": {"@id": "42", "name": {"@first": "Ada", "@last": "Lovelace"},
                                "note": {"@lang": "en", "#text": "call after 5"}, "empty": ""}}


def test_namespaced_attributes_drop_their_prefix():
    payload = parse(b'<lead xmlns:x="urn:x" x:source="web"><phone>1</phone></lead>')
    assert payload["lead"]["@source"] == "web"


def test_repeated_elements_become_a_list_in_document_order():
    payload = parse(b"<leads><lead><phone>1</phone></lead><other/><lead><phone>2</phone></lead></leads>")
    assert [lead["phone"] for lead in payload["leads"]["lead"]] == ["1", "2"]


def test_query_fields_come_first_and_the_document_overrides():
    assert parse(b"<lead><phone>1</phone></lead>", query="lead=x&src=y") == {"lead": {"phone": "1"}, "src": "y"}


def test_sniffed_under_text_plain_and_unlabelled():
    assert parse(b"  <lead><phone>1</phone></lead>", "text/plain") == {"lead": {"phone": "1"}}
    assert parse(b"<lead><phone>1</phone></lead>", "") == {"lead": {"phone": "1"}}


def test_declared_encoding_is_honoured():
    body = '<?xml version="1.0" encoding="ISO-8859-1"?><lead><name>José</name></lead>'.encode("latin-1")
    assert parse(body)["lead"]["name"] == "José"


@pytest.mark.parametrize("body, reason", [(BILLION_LAUGHS, "dtd"), (XXE, "dtd")])
def test_billion_laughs_and_xxe_are_refused(body, reason):
    with pytest.raises(MalformedBody) as caught:
        parse(body)
    assert caught.value.status == 400
    assert caught.value.details["reason"] == reason
    assert "DTD" in caught.value.message


def test_malformed_xml_names_line_and_column():
    with pytest.raises(MalformedBody) as caught:
        parse(b"<lead>\n  <phone>1</lead>")
    assert caught.value.details["line"] == 2
    assert caught.value.details["column"] >= 1
    assert "line 2" in caught.value.message


def test_undefined_entity_is_a_parse_error():
    with pytest.raises(MalformedBody, match="undefined entity"):
        parse(b"<lead>&nbsp;</lead>")


def test_depth_and_size_are_bounded():
    deep = b"<a>" * (xmlbody.MAX_DEPTH + 1) + b"</a>" * (xmlbody.MAX_DEPTH + 1)
    with pytest.raises(MalformedBody) as caught:
        parse(deep)
    assert caught.value.details["reason"] == "too_deep"
    wide = b"<r>" + b"<i/>" * xmlbody.MAX_ELEMENTS + b"</r>"
    with pytest.raises(MalformedBody) as caught:
        parse(wide)
    assert caught.value.details["reason"] == "too_many_elements"


def test_a_declaration_without_a_root_is_malformed():
    with pytest.raises(MalformedBody):
        parse(b'<?xml version="1.0"?>')
