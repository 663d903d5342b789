from pathlib import Path

import pytest

from relay.mapping.httpfile import HttpFileError, guess_content_type, parse_http_file

PAYLOADS = Path(__file__).resolve().parents[2] / "payloads"


def test_body_is_every_byte_after_the_blank_line_without_the_final_newline():
    request = parse_http_file(b"# a comment\nPOST {{base_url}}/hooks/x HTTP/1.1\n"
                              b"Content-Type: application/json\n\n{\"a\": 1}\n\n")
    assert request.method == "POST"
    assert request.content_type == "application/json"
    assert request.body == b"{\"a\": 1}\n"


def test_query_string_and_placeholders():
    request = parse_http_file(b"GET {{base_url}}/post.do?a=1&b=N%C3%BA HTTP/1.1\nHost: {{host}}\n\n",
                              base_url="http://relay.test:8080")
    assert request.method == "GET"
    assert request.query == "a=1&b=N%C3%BA"
    assert request.headers == {"Host": "relay.test:8080"}
    assert request.body == b""


def test_file_without_a_blank_line_has_an_empty_body():
    request = parse_http_file(b"GET /x?y=1 HTTP/1.1\nAccept: */*")
    assert request.body == b"" and request.query == "y=1"


def test_crlf_line_endings():
    request = parse_http_file(b"POST /x HTTP/1.1\r\nContent-Type: text/plain\r\n\r\nhello\r\n")
    assert request.content_type == "text/plain"
    assert request.body == b"hello"


@pytest.mark.parametrize("data", [b"# only comments\n", b"NOT A REQUEST LINE AT ALL\n\n", b"POST /x\nbad header\n\n"])
def test_malformed_files_are_reported(data):
    with pytest.raises(HttpFileError):
        parse_http_file(data)


@pytest.mark.parametrize("path", sorted(PAYLOADS.glob("*.http")), ids=lambda p: p.stem)
def test_vendor_samples_parse(path):
    data = path.read_bytes()
    request = parse_http_file(data)
    assert request.method in ("GET", "POST")
    if request.method == "POST":
        assert request.body and data.endswith(request.body + b"\n")


def test_signed_sample_body_matches_its_signature():
    import hashlib
    import hmac

    request = parse_http_file((PAYLOADS / "facebook_lead_graph_object.http").read_bytes())
    digest = hmac.new(b"heldout-test-secret", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Hub-Signature-256"] == "sha256=" + digest


@pytest.mark.parametrize("body, expected", [
    (b'{"a": 1}', "application/json"),
    (b' [1]', "application/json"),
    (b"a=1&b=2", "application/x-www-form-urlencoded"),
    (b"hello world", "text/plain"),
])
def test_guess_content_type(body, expected):
    assert guess_content_type(body) == expected
