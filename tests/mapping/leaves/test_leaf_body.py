import codecs
import json
import random

import pytest

from relay.errors import FilesRefused, MalformedBody, RelayError, UnsupportedMediaType
from relay.mapping.body import parse_request
from relay.mapping.model import InboundRequest


def parse(body=b"", content_type="", query="", method="POST", **options):
    return parse_request(InboundRequest(method=method, content_type=content_type, body=body, query=query), **options)


LEAD = {"first_name": "José", "phone": "+15125550147"}
LEAD_TEXT = json.dumps(LEAD, ensure_ascii=False)


# --- JSON ---

@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32",
                                      "utf-32-le", "utf-32-be"])
def test_json_in_any_unicode_encoding(encoding):
    assert parse(LEAD_TEXT.encode(encoding), "application/json") == LEAD


def test_json_charset_parameter_is_honoured():
    assert parse(LEAD_TEXT.encode("latin-1"), "application/json; charset=ISO-8859-1") == LEAD
    assert parse(LEAD_TEXT.encode("cp1252"), 'application/json; charset="windows-1252"') == LEAD


def test_json_bom_wins_over_a_wrong_charset():
    assert parse(codecs.BOM_UTF16_LE + LEAD_TEXT.encode("utf-16-le"), "application/json; charset=utf-8") == LEAD


@pytest.mark.parametrize("content_type", ["text/plain", "", "application/octet-stream", "application/vnd.api+json",
                                          "text/plain; charset=utf-8", "APPLICATION/JSON"])
def test_json_sniffed_or_labelled(content_type):
    assert parse(b"  \n" + LEAD_TEXT.encode(), content_type) == LEAD


def test_top_level_array_goes_under_items():
    assert parse(b'[{"a": 1}, 2]', "application/json") == {"items": [{"a": 1}, 2]}


@pytest.mark.parametrize("body", [b'"text"', b"42", b"null", b"true"])
def test_top_level_scalar_is_malformed(body):
    with pytest.raises(MalformedBody):
        parse(body, "application/json")


def test_invalid_json_names_line_and_column():
    with pytest.raises(MalformedBody) as caught:
        parse(b'{\n  "a": 1,\n  "b": }', "application/json; charset=utf-8")
    details = caught.value.details
    assert (details["line"], details["column"]) == (3, 8)
    assert details["content_type"] == "application/json; charset=utf-8"
    assert "line 3 column 8" in caught.value.message
    assert caught.value.status == 400


@pytest.mark.parametrize("body", [b'{"a": NaN}', b'{"a": Infinity}', b"[" * 50000, b'{"a": "\xff"}',
                                  b'{"a": ' + b"9" * 5000 + b"}"])
def test_other_json_failures_are_malformed(body):
    with pytest.raises(MalformedBody):
        parse(body, "application/json")


def test_unknown_charset_is_unsupported():
    with pytest.raises(UnsupportedMediaType):
        parse(b"{}", "application/json; charset=klingon")


# --- forms ---

def test_form_single_and_repeated_keys():
    body = b"first_name=Jos%C3%A9&tag=a&tag=b&empty=&plus=a+b&tag=c"
    assert parse(body, "application/x-www-form-urlencoded") == {
        "first_name": "José", "tag": ["a", "b", "c"], "empty": "", "plus": "a b"}


def test_form_charset():
    assert parse(b"name=Jos%E9", "application/x-www-form-urlencoded; charset=ISO-8859-1") == {"name": "José"}
    assert parse("name=José".encode("cp1252"), "application/x-www-form-urlencoded; charset=windows-1252") == {
        "name": "José"}


def test_form_invalid_utf8_is_malformed():
    with pytest.raises(MalformedBody):
        parse(b"name=Jos%E9", "application/x-www-form-urlencoded")
    with pytest.raises(MalformedBody):
        parse(b"name=Jos\xe9", "application/x-www-form-urlencoded")


def test_unbounce_sample(sample):
    payload = parse_request(sample("unbounce_form_submit"))
    assert payload["page_name"] == "TX Health Quote"
    assert json.loads(payload["data.json"])["first_name"] == ["Rosa"]


def test_unlabelled_form_is_sniffed():
    assert parse(b"a=1&b=2", "") == {"a": "1", "b": "2"}


# --- multipart ---

def multipart(*parts, boundary="XyZ"):
    chunks = []
    for headers, content in parts:
        chunks.append(f"--{boundary}\r\n".encode() + "".join(f"{h}\r\n" for h in headers).encode("utf-8")
                      + b"\r\n" + content + b"\r\n")
    return b"".join(chunks) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


MULTIPART_LEAD = multipart(
    (['Content-Disposition: form-data; name="first_name"'], "José".encode()),
    (['Content-Disposition: form-data; name="tag"'], b"a"),
    (['Content-Disposition: form-data; name="tag"'], b"b"),
    (['Content-Disposition: form-data; name="note"'], b"line 1\r\nline 2"),
    (['Content-Disposition: form-data; name="latin"', "Content-Type: text/plain; charset=iso-8859-1"], b"Jos\xe9"),
    (['Content-Disposition: form-data; name="upload"; filename="id.png"', "Content-Type: image/png"],
     b"\x89PNG\r\n\x00\xff"),
)


def test_multipart_text_fields_and_ignored_files():
    body, content_type = MULTIPART_LEAD
    assert parse(body, content_type, query="src=fb") == {
        "src": "fb", "first_name": "José", "tag": ["a", "b"], "note": "line 1\r\nline 2", "latin": "José"}


def test_multipart_files_refused_names_the_field():
    body, content_type = MULTIPART_LEAD
    with pytest.raises(FilesRefused) as caught:
        parse(body, content_type, files="refuse")
    assert caught.value.details["field"] == "upload"
    assert caught.value.status == 400


def test_multipart_utf8_field_name():
    body, content_type = multipart((['Content-Disposition: form-data; name="prénom"'], b"x"))
    assert parse(body, content_type) == {"prénom": "x"}


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=other"])
def test_multipart_without_a_matching_boundary_is_malformed(content_type):
    body, _ = MULTIPART_LEAD
    with pytest.raises(MalformedBody):
        parse(body, content_type)


def test_multipart_invalid_text_is_malformed():
    body, content_type = multipart((['Content-Disposition: form-data; name="a"'], b"\xff\xfe\xfa"))
    with pytest.raises(MalformedBody) as caught:
        parse(body, content_type)
    assert caught.value.details["field"] == "a"


# --- query string and empty bodies ---

def test_query_string_merged_body_wins(sample):
    assert parse(b'{"a": "body", "b": 2}', "application/json", query="a=query&c=3&c=4") == {
        "a": "body", "c": ["3", "4"], "b": 2}


def test_get_with_query_only(sample):
    payload = parse_request(sample("leadspedia_get_querystring"))
    assert payload["last_name"] == "Nuñez"
    assert payload["email_address"] == "gloria.nunez@example.com"
    assert payload["tcpa_text"].startswith("By submitting this form")
    assert payload["trusted_form_cert_id"].startswith("https://cert.trustedform.com/")


def test_empty_body_and_query():
    assert parse() == {}
    assert parse(b"", "application/json") == {}
    assert parse(b"", "application/xml", query="a=1") == {"a": "1"}


# --- unsupported ---

@pytest.mark.parametrize("body, content_type", [
    (b"%PDF-1.4", "application/pdf"),
    (b"\x89PNG\r\n", "image/png"),
    (b"just words", "text/plain"),
    (b"just words", ""),
])
def test_unsupported_media_types(body, content_type):
    with pytest.raises(UnsupportedMediaType) as caught:
        parse(body, content_type)
    assert caught.value.status == 415


def test_every_sample_parses(sample):
    for name in ("facebook_lead_graph_object", "facebook_leadgen_webhook", "leadspedia_get_querystring",
                 "typeform_form_response", "unbounce_form_submit"):
        assert parse_request(sample(name))


# --- fuzz: any bytes give a payload or a RelayError, nothing else ---

CONTENT_TYPES = ["application/json", "application/json; charset=utf-16", "text/plain", "",
                 "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=latin-1",
                 "multipart/form-data; boundary=XyZ", "multipart/form-data; boundary=\"\"",
                 "multipart/form-data", "application/xml", "application/json; charset=nope", ";;;=="]
SEEDS = [b"", b"{", b"[", b'{"a":', b"a=1&b", b"%", b"%zz=%", b"--XyZ\r\n", MULTIPART_LEAD[0], b"\xef\xbb\xbf",
         b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff", LEAD_TEXT.encode("utf-16")]


def mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(0, 8)):
        choice = rng.random()
        if choice < 0.4 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice < 0.7:
            data[rng.randint(0, len(data)):rng.randint(0, len(data))] = rng.randbytes(rng.randint(1, 6))
        elif data:
            del data[rng.randrange(len(data))]
    return bytes(data)


def test_random_bytes_never_escape_as_other_exceptions():
    rng = random.Random(20251127)
    for _ in range(3000):
        body = mutate(rng, rng.choice(SEEDS)) if rng.random() < 0.8 else rng.randbytes(rng.randint(0, 64))
        query = mutate(rng, b"a=1&b=%C3%A9").decode("latin-1") if rng.random() < 0.3 else ""
        try:
            payload = parse(body, rng.choice(CONTENT_TYPES), query=query, files=rng.choice(["ignore", "refuse"]))
        except RelayError as error:
            assert 400 <= error.status < 500
            json.dumps(error.to_dict())
        else:
            assert isinstance(payload, dict)
