"""Masking of personal data: phones, emails, names and addresses, and secrets, in every spelling."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay import pii

PII_SOURCE = Path(pii.__file__)


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


# --- the module itself ---

def test_pii_imports_only_the_standard_library() -> None:
    tree = ast.parse(PII_SOURCE.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "json", "re", "threading", "typing", "urllib"}, imported


# --- phones ---

@pytest.mark.parametrize("phone", [
    "+15125550147", "5125550147", "(512) 555-0147", "512-555-0147", "512.555.0147", "1 512 555 0147",
    "+44 20 7946 0958", "+44 (0)20 7946 0958", "0044 20 7946 0958", "+49 30 901820", "0049-30-901820",
    "+33 1 23 45 67 89", "+61 2 9876 5432", "+353 1 234 5678", "020 7946 0958", "(030) 901820",
    "01 23 45 67 89", "07700 900123",
])
def test_phones_are_masked(phone: str) -> None:
    masked = pii.mask_text(f"caller {phone} called")
    assert phone not in masked
    assert masked == f"caller ***{digits(phone)[-2:]} called"


@pytest.mark.parametrize("encoded", ["phone=%28512%29+555-0147&x=1", "phone=%2B15125550147", "p=512%20555%200147",
                                     "phone=%2B44%2020%207946%200958", "phone=%2B44+20+7946+0958&x=1",
                                     "msg=call%20020%207946%200958"])
def test_phones_in_a_logged_url_are_masked(encoded: str) -> None:
    masked = pii.mask_text(encoded)
    assert "7946" not in masked and "555" not in masked


@pytest.mark.parametrize("text", [
    "2024-01-15T12:00:00.123Z", "127.0.0.1", "203.0.113.7", "took 1718000000.5 s", "status 202 in 1.37 ms",
    "form 881234567890123 campaign 120214455667600002", "id 3f2a91c3-1234-5678-9abc-def012345678",
    "+1 555", "ext 0012", "zip 78701",
])
def test_numbers_that_are_not_phones_are_kept(text: str) -> None:
    assert pii.mask_text(text) == text


# --- emails ---

@pytest.mark.parametrize(("email", "shown"), [
    ("dana.whitfield@example.com", "d***@example.com"),
    ("josé@exämple.com", "j***@exämple.com"),
    ("müller.jürgen@xn--exmple-cua.com", "m***@xn--exmple-cua.com"),
    ("ユーザー@例え.テスト", "ユ***@例え.テスト"),
    ("dana.whitfield%40example.com", "d***@example.com"),
])
def test_emails_are_masked(email: str, shown: str) -> None:
    assert pii.mask_text(f"from {email}, twice") == f"from {shown}, twice"


def test_an_email_escaped_in_json_is_masked() -> None:
    escaped = json.dumps("josé.garcía@exämple.com")  # ensure_ascii: \u00e9
    assert "garc" not in pii.mask_text(escaped) and "jos" not in pii.mask_text(escaped)


def test_a_percent_encoded_unicode_email_is_masked() -> None:
    assert "jos" not in pii.mask_text("email=" + quote("josé@exämple.com", safe=""))


# --- names and addresses, by key ---

def test_names_and_addresses_in_a_query_string_are_masked() -> None:
    masked = pii.mask_text("/hooks/x?first_name=Jo&last_name=Smith&address=1+Main+St&city=Austin&state=TX")
    assert masked == "/hooks/x?first_name=J***&last_name=S***&address=1***&city=Austin&state=TX"


@pytest.mark.parametrize("query", ["contact%5Bfirst_name%5D=Jo", "contact[first_name]=Jo", "FirstName=Jo",
                                   "full-name=Jo", "Street_Address=1+Main"])
def test_keys_are_recognised_in_their_usual_spellings(query: str) -> None:
    assert query.split("=")[1] not in pii.mask_text(query)


def test_names_and_addresses_in_json_text_are_masked() -> None:
    text = json.dumps({"name": "Dana Whitfield", "street_address": "4410 Duval St", "city": "Austin"})
    assert json.loads(pii.mask_text(text)) == {"name": "D***", "street_address": "4***", "city": "Austin"}
    nested = json.dumps({"body": text})  # JSON inside a JSON string: quotes escaped
    assert "Whitfield" not in pii.mask_text(nested) and "Duval" not in pii.mask_text(nested)


@pytest.mark.parametrize("key", ["source_name", "filename", "email_address", "ip_address", "client_addr",
                                 "adset_name", "city", "zip_code"])
def test_other_keys_are_not_personal(key: str) -> None:
    assert not pii.is_personal_key(key)
    assert pii.mask_text(f"{key}=acme") == f"{key}=acme"


def test_mask_value_walks_structures_and_label_value_pairs() -> None:
    lead = {
        "field_data": [{"name": "first_name", "values": ["Dana"]}, {"name": "city", "values": ["Austin"]},
                       {"name": "street_address", "values": ["4410 Duval St"]}],
        "contact": {"full_name": "Dana Whitfield", "phone": "+44 20 7946 0958", "email": "josé@exämple.com"},
        "address": {"line1": "4410 Duval St", "city": "Austin", "house_number": 4410},
        "tags": ("a", "b"), "count": 3, "ok": True, "nothing": None,
    }
    assert pii.mask_value(lead) == {
        "field_data": [{"name": "first_name", "values": ["D***"]}, {"name": "city", "values": ["Austin"]},
                       {"name": "street_address", "values": ["4***"]}],
        "contact": {"full_name": "D***", "phone": "***58", "email": "j***@exämple.com"},
        "address": {"line1": "4***", "city": "Austin", "house_number": "4***"},
        "tags": ["a", "b"], "count": 3, "ok": True, "nothing": None,
    }


def test_mask_body_walks_json_and_scans_forms() -> None:
    assert json.loads(pii.mask_body(b'{"first_name": "Jo", "phone": "+49 30 901820"}')) == {
        "first_name": "J***", "phone": "***20"}
    assert pii.mask_body(b"first_name=Jo&email=jo%40example.com") == "first_name=J***&email=j***@example.com"
    assert pii.mask_body(b"{not json, first_name=Jo") == "{not json, first_name=J***"


def test_empty_values_stay_empty() -> None:
    assert pii.mask_text("first_name=&x=1") == "first_name=&x=1"
    assert pii.mask_value({"name": ""}) == {"name": ""}


# --- secrets ---

def test_secrets_are_masked_as_is_escaped_and_encoded() -> None:
    secret = 'tok/en+"value"=='
    pii.register_secret(secret)
    for form in (secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)):
        assert pii.mask_text(f"k={form}&x") == f"k={pii.SECRET_MASK}&x"


def test_short_values_are_not_treated_as_secrets() -> None:
    pii.register_secret("abc")
    assert pii.mask_text("abc def") == "abc def"


def test_database_password_is_registered() -> None:
    pii.register_url_password("postgresql://relay:pa%24%24word-42@db/relay")
    assert "pa$$word-42" not in pii.mask_text("auth failed for pa$$word-42")


# --- properties: generated numbers and addresses never survive ---

AROUND = st.sampled_from([" ", "\n", ", ", ": ", "=", '"', "(", "<", "\t", " tel. "])
PROSE = st.text(alphabet="abcdefghij klmnopqrstuvwxyz,;!?", max_size=30)
SEPARATORS = st.sampled_from([" ", "-", ".", ""])


@st.composite
def nanp_phones(draw: st.DrawFn) -> tuple[str, str]:
    area = f"{draw(st.integers(2, 9))}{draw(st.integers(0, 99)):02d}"
    exchange = f"{draw(st.integers(2, 9))}{draw(st.integers(0, 99)):02d}"
    line = f"{draw(st.integers(0, 9999)):04d}"
    sep = draw(SEPARATORS)
    layout = draw(st.sampled_from([
        "{a}{s}{e}{s}{l}", "({a}) {e}-{l}", "({a}){e}-{l}", "1{s}{a}{s}{e}{s}{l}", "+1{s}{a}{s}{e}{s}{l}",
        "+1 ({a}) {e}-{l}", "+1{a}{e}{l}"]))
    return layout.format(a=area, e=exchange, l=line, s=sep), area + exchange + line


@st.composite
def international_phones(draw: st.DrawFn) -> tuple[str, str]:
    country = draw(st.sampled_from(["44", "49", "33", "34", "39", "31", "41", "61", "81", "91", "52", "55",
                                    "353", "358", "972", "971", "7", "1"]))
    national = str(draw(st.integers(1, 9))) + "".join(str(draw(st.integers(0, 9)))
                                                      for _ in range(draw(st.integers(6, 10))))
    groups, rest = [], national
    while rest:
        # Numbers are written in groups of two to four digits; only the first may be one (+33 6 12 ...).
        size = draw(st.integers(1 if not groups else 2, 4))
        if len(rest) - size == 1:
            size += 1
        groups.append(rest[:size])
        rest = rest[size:]
    sep = draw(SEPARATORS)
    prefix = draw(st.sampled_from(["+", "00", "+"]))
    trunk = draw(st.sampled_from(["", "", " (0)"])) if sep == " " else ""
    return f"{prefix}{country}{trunk}{sep or ''}{sep.join(groups)}" if sep else \
        f"{prefix}{country}{''.join(groups)}", national


@st.composite
def national_phones(draw: st.DrawFn) -> tuple[str, str]:
    area = "0" + str(draw(st.integers(1, 9))) + "".join(str(draw(st.integers(0, 9)))
                                                        for _ in range(draw(st.integers(0, 3))))
    subscriber = "".join(str(draw(st.integers(0, 9))) for _ in range(draw(st.integers(9, 11)) - len(area)))
    sep = draw(st.sampled_from([" ", "-", "."]))
    if draw(st.booleans()) and len(subscriber) >= 6:
        half = len(subscriber) // 2
        subscriber_shown = subscriber[:half] + sep + subscriber[half:]
    else:
        subscriber_shown = subscriber
    area_shown = f"({area})" if draw(st.booleans()) else area
    return f"{area_shown}{sep}{subscriber_shown}", area[1:] + subscriber


def assert_phone_masked(phone: str, significant: str, masked: str) -> None:
    assert phone not in masked
    # The prose around it holds no digits: any 3 of the number's digits still in a row would be a leak.
    assert significant[:-2] not in digits(masked), masked


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(phone=st.one_of(nanp_phones(), international_phones(), national_phones()),
       before=PROSE, after=PROSE, left=AROUND, right=AROUND)
def test_generated_phones_never_survive(phone: tuple[str, str], before: str, after: str, left: str,
                                        right: str) -> None:
    shown, significant = phone
    text = f"{before}{left}{shown}{right}{after}"
    assert_phone_masked(shown, significant, pii.mask_text(text))
    assert_phone_masked(shown, significant, pii.mask_text(json.dumps({"msg": text})))
    assert_phone_masked(quote_plus(shown), significant, pii.mask_text(f"q=1&phone={quote_plus(shown)}&x=2"))
    assert_phone_masked(quote(shown), significant, pii.mask_text(f"/x?phone={quote(shown, safe='')}"))


UNICODE_LETTERS = st.characters(categories=["Ll", "Lu", "Lo"], max_codepoint=0xFFFF)
ASCII_LETTERS = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@st.composite
def emails(draw: st.DrawFn) -> tuple[str, str]:
    letters = draw(st.sampled_from([ASCII_LETTERS, UNICODE_LETTERS]))
    word = st.text(alphabet=st.one_of(letters, st.sampled_from("0123456789")), min_size=1, max_size=12)
    local = draw(word) + "".join(draw(st.sampled_from([".", "_", "-", "+", ""])) + draw(word)
                                 for _ in range(draw(st.integers(0, 2))))
    labels = [draw(st.text(alphabet=st.one_of(letters, st.sampled_from("0123456789")), min_size=1, max_size=10))
              for _ in range(draw(st.integers(1, 2)))]
    tld = draw(st.one_of(st.text(alphabet=letters, min_size=2, max_size=6),
                         st.builds(lambda s: "xn--" + s, st.text(alphabet="abcdefghij0123456789", min_size=4,
                                                                 max_size=8))))
    return f"{local}@{'.'.join([*labels, tld])}", local


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(email=emails(), before=PROSE, after=PROSE, left=AROUND, right=AROUND)
def test_generated_emails_never_survive(email: tuple[str, str], before: str, after: str, left: str,
                                        right: str) -> None:
    address, local = email
    text = f"{before}{left}{address}{right}{after}"
    for masked in (pii.mask_text(text), pii.mask_text(json.dumps({"msg": text})),
                   pii.mask_text(json.dumps({"msg": text}, ensure_ascii=False)),
                   pii.mask_text(f"email={quote(address, safe='')}&x=1")):
        assert address not in masked
        assert quote(address, safe="") not in masked
        if len(local) > 1:
            assert f"{local}@" not in masked and f"{quote(local, safe='')}%40" not in masked


@pytest.mark.parametrize(("text", "shown"), [
    ("phone=447946095812&x=1", "phone=***12&x=1"),  # international without its +
    ("phone=7946-0958", "phone=***58"),  # a local number
    ('"mobile_phone": "07946 095812"', '"mobile_phone": "***12"'),
    ('{"caller_id": 447946095812}', '{"caller_id": "***12"}'),
    ('{\\"cell\\": 447946095812}', '{\\"cell\\": \\"***12\\"}'),  # JSON inside a JSON string
    ("q=%E2%80%AA%2B44%207946%20095812", "q=%E2%80%AA***12"),  # after a percent-encoded mark
    ("first%5Fname=Jo", "first%5Fname=J***"),  # a percent-encoded underscore in the key
])
def test_phones_under_phone_keys_and_encoded_spellings_are_masked(text: str, shown: str) -> None:
    assert pii.mask_text(text) == shown


def test_phone_keys_leave_other_words_and_empty_values_alone() -> None:
    assert pii.mask_text("hotel=5 stars&phone=&x=1") == "hotel=5 stars&phone=&x=1"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(['"', "5", "1", "2", "0", "7", "4", " ", "-", ".", "(", ")", "+", "%", "2B", "20",
                                 "\\n", "a", "x", "00", "5125550147", "+44 20 7946 0958", "e3"]), max_size=40))
def test_the_phone_scan_over_quoted_stretches_finds_what_a_whole_scan_finds(parts: list[str]) -> None:
    text = "".join(parts)
    whole = pii._PHONE.sub(pii._mask_phone_match, text)
    assert pii._mask_phones(text) == whole
