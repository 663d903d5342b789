"""multipart/form-data parts: what senders write, what hand-written fixtures write, and junk."""
from __future__ import annotations

import email.parser
import email.policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.mapping.multipart import MultipartError, parse_parts


def body_of(*parts: tuple[list[str], bytes], boundary: str = "XyZ", newline: str = "\r\n") -> bytes:
    chunks = [f"--{boundary}{newline}".encode() + "".join(f"{h}{newline}" for h in headers).encode()
              + newline.encode() + content + newline.encode() for headers, content in parts]
    return b"".join(chunks) + f"--{boundary}--{newline}".encode()


def named(name: str) -> list[str]:
    return [f'Content-Disposition: form-data; name="{name}"']


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_fields_in_order_with_either_line_ending(newline: str) -> None:
    body = body_of((named("a"), b"1"), (named("b"), b"two\r\nlines"), (named("c"), b""), newline=newline)
    assert [(part.name, part.content) for part in parse_parts(body, "XyZ")] == [
        ("a", b"1"), ("b", b"two\r\nlines"), ("c", b"")]


def test_names_quoted_extended_and_raw_utf8() -> None:
    body = body_of((['Content-Disposition: form-data; name="say \\"hi\\""'], b"1"),
                   (["Content-Disposition: form-data; name=\"fallback\"; name*=utf-8''pr%C3%A9nom"], b"2"),
                   ([], b"no headers"))
    names = [part.name for part in parse_parts(body, "XyZ")]
    assert names == ['say "hi"', "prénom", ""]
    raw = body_of((named("prénom"), b"x"))
    assert parse_parts(raw, "XyZ")[0].name == "prénom"


def test_files_charsets_and_transfer_encodings() -> None:
    body = body_of(
        (['Content-Disposition: form-data; name="upload"; filename="id.png"', "Content-Type: image/png"], b"\x89PNG"),
        ([*named("latin"), "Content-Type: text/plain; charset=ISO-8859-1"], b"Jos\xe9"),
        ([*named("b64"), "Content-Transfer-Encoding: base64"], b"Sm9zw6k="),
        ([*named("qp"), "Content-Transfer-Encoding: quoted-printable"], b"Jos=C3=A9"))
    upload, latin, b64, qp = parse_parts(body, "XyZ")
    assert (upload.filename, upload.content_type) == ("id.png", "image/png")
    assert (latin.filename, latin.charset) == (None, "ISO-8859-1")
    assert b64.content == qp.content == "José".encode()


def test_preamble_epilogue_folded_headers_and_boundary_lookalikes() -> None:
    body = (b"preamble\r\n--XyZ\r\nContent-Disposition: form-data;\r\n name=\"a\"\r\n\r\n"
            b"--XyZebra is content\r\n--XyZ--\r\nepilogue")
    (part,) = parse_parts(body, "XyZ")
    assert (part.name, part.content) == ("a", b"--XyZebra is content")


@pytest.mark.parametrize("body", [
    b"", b"no boundary at all", b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nnever closed",
    b"--XyZjunk\r\n\r\n--XyZ--", b"--XyZ",
])
def test_broken_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(MultipartError):
        parse_parts(body, "XyZ")


NAMES = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters='"\\'),
                min_size=1, max_size=12)
CONTENTS = st.binary(max_size=40).filter(lambda content: b"--B0undary" not in content)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(NAMES, CONTENTS), max_size=6))
def test_reads_what_the_email_parser_reads(fields: list[tuple[str, bytes]]) -> None:
    body = body_of(*((named(name), content) for name, content in fields), boundary="B0undary")
    head = b"Content-Type: multipart/form-data; boundary=B0undary\r\n\r\n"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    expected = [(part.get_param("name", header="content-disposition").encode("utf-8", "surrogateescape")
                 .decode("utf-8"), part.get_payload(decode=True)) for part in message.iter_parts()]
    assert [(part.name, part.content) for part in parse_parts(body, "B0undary")] == expected


def test_too_many_parts_are_refused_before_the_rest_is_read() -> None:
    body = body_of(*((named(f"f{n}"), b"x") for n in range(4)))
    assert len(parse_parts(body, "XyZ", max_parts=4)) == 4
    with pytest.raises(MultipartError, match="more than 3 parts"):
        parse_parts(body, "XyZ", max_parts=3)
