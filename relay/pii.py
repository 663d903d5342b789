"""Masking of personal data and secrets, for log lines, admin pages and command output.

What is masked, and how much of it stays visible (enough to tell two leads apart,
not enough to call or write to anyone):

* phone numbers: North American (``(512) 555-0147``, ``512.555.0147``, ``+1 512 555 0147``),
  international with ``+`` or ``00`` (``+44 20 7946 0958``, ``0049 30 901820``) and
  national with a trunk ``0`` (``020 7946 0958``, ``01 23 45 67 89``) become ``***`` and
  their last two digits;
* email addresses, ASCII or not (``josé@exämple.com``, ``user@xn--exmple-cua.com``) keep
  their first character and their domain: ``j***@exämple.com``;
* names and street addresses, which no pattern recognises, are masked by the key they
  come under (see :data:`PERSONAL_KEY`): in JSON (``"first_name": "Jo"``), in a query
  string or form (``first_name=Jo&address=1+Main+St``) and in a walked structure
  (:func:`mask_value`). The value keeps its first character: ``J***``. City, state,
  postal code and country are kept: alone they identify nobody, and routing rules use them;
* registered secrets (see :func:`register_secret`) become ``[secret]``.

Each rule also matches the percent-encoded spelling a URL gives (``%2B``, ``%20``,
``%40``, ``%28``/``%29``). Masking runs on every log line, so each costlier scan is
behind a cheap test that most lines fail. Standard library only: the logging setup,
the web layer and the command line all use it.
"""
from __future__ import annotations

import json
import re
import threading
from typing import Any, Iterable, Mapping
from urllib.parse import quote, quote_plus, unquote, urlsplit

__all__ = ["PERSONAL_KEY", "SECRET_MASK", "is_personal_key", "mask_body", "mask_email", "mask_personal",
           "mask_phone", "mask_secrets", "mask_text", "mask_value", "register_env_secrets", "register_secret",
           "register_secrets", "register_url_password"]

SECRET_MASK = "[secret]"

# --- phones ---

_SEP = r"(?:[\s.+\-]|%20)"  # + is a space in a query string
_OPEN, _CLOSE = r"(?:\(|%28)", r"(?:\)|%29)"
# Possessive digit runs (\d++) leave one way to split a number into groups, so a long
# digit string that fails the final check fails at once instead of backtracking.
_GROUPS = rf"(?:{_SEP}?{_OPEN}?\d++{_CLOSE}?){{1,7}}+"
# A number starts after a non-word character, a percent-encoded space or punctuation, or a
# JSON escape (a line break in a logged message is "\n" in the JSON line).
_PHONE_START = r"(?:(?<![\w+.%])|(?<=%[0-9A-Fa-f]{2})|(?<=\\[ntrbf]))"
_PHONE = re.compile(
    rf"{_PHONE_START}(?:"
    # + or 00, a country code, groups: +44 20 7946 0958, 0049 30 901820, +44 (0)20 7946 0958
    rf"(?P<intl>(?:\+|%2B|00){_GROUPS})"
    # a trunk 0 and groups: 020 7946 0958, (030) 901820, 01 23 45 67 89
    rf"|(?P<national>{_OPEN}?0\d++{_CLOSE}?(?:{_SEP}{_OPEN}?\d++{_CLOSE}?){{0,6}}+)"
    # North America: (512) 555-0147, 512.555.0147, 1-512-555-0147, 5125550147
    rf"|(?P<nanp>(?:(?:\+|%2B)?1{_SEP}?)?{_OPEN}?\d{{3}}{_CLOSE}?{_SEP}?\d{{3}}{_SEP}?\d{{4}})"
    r")(?!\w|\.\d)")
# Fewest digits that make a phone number, by kind; shorter runs are extensions, years, ids.
_MIN_DIGITS = {"intl": 7, "national": 9}
# Every phone match holds 8 digits with at most 3 separator characters between two of them,
# so a line without such a run (most lines) skips the scan above. Letters break a run.
_PHONE_HINT = re.compile(r"\d(?:[\s().+%\-]{0,3}\d){7}")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_NOT_DIGIT = re.compile(r"\D")

# --- emails ---

_U_ESCAPE = r"\\u[0-9a-fA-F]{4}"  # a character as JSON escapes it: a line may hold JSON inside JSON
_LOCAL_CHAR = rf"(?:[\w%+\-]|{_U_ESCAPE})"
_LABEL = rf"(?:[\w\-]|%[0-9A-Fa-f]{{2}}|{_U_ESCAPE})+"
_EMAIL = re.compile(rf"({_LOCAL_CHAR})(?:{_LOCAL_CHAR}|\.)*(?:@|%40)({_LABEL}(?:\.{_LABEL})+)")

# --- names and street addresses, by key ---

_WORD_SEP = r"(?:[_\- ]|%5[Ff]|%20)?"  # percent-encoded as a URL may give it: first%5Fname
_NAME_KEY = (rf"(?:(?:first|middle|last|full|given|family|contact|customer|caller){_WORD_SEP})?name"
             r"|[fl]name|surname")
_ADDRESS_KEY = (rf"(?:(?:street|home|mailing|postal|billing|shipping|residential){_WORD_SEP})?"
                rf"address(?:{_WORD_SEP}line)?(?:{_WORD_SEP}[123])?"
                rf"|addr(?:{_WORD_SEP}line)?(?:{_WORD_SEP}[123])?"
                rf"|street(?:{_WORD_SEP}(?:address|line))?(?:{_WORD_SEP}[123])?"
                rf"|line{_WORD_SEP}[123]|(?:house|street|building){_WORD_SEP}(?:number|no)")
PERSONAL_KEY = re.compile(rf"(?:{_NAME_KEY}|{_ADDRESS_KEY})", re.IGNORECASE)
"""Keys whose values are names or street addresses: first_name, FirstName, last-name, name,
full_name, surname, fname, address, address1, address_line_2, street, street_address, ...
Only the key's last part counts, so ``contact[first_name]`` and ``contact.first_name`` match;
``email_address``, ``ip_address``, ``source_name`` and ``filename`` do not."""
# In a query string or form: the key, maybe bracketed, then = and the value up to & or a quote.
_FORM_PAIR = re.compile(rf"(?:(?<![\w\-%])|(?<=%5[Bb]))({PERSONAL_KEY.pattern})((?:\]|%5D)?=)([^&\s\"'\\#]*)",
                        re.IGNORECASE)
# In JSON, or JSON inside a JSON string (quotes escaped): "key": "value".
_JSON_PAIR = re.compile(rf"(?<=[\"\[.])({PERSONAL_KEY.pattern})(\\?\"\s*:\s*)(\\?\")(.*?)(?<!\\)\3",
                        re.IGNORECASE)
# Phones under a phone key, in any spelling, even one no pattern recognises: 447946095812
# (international without its +), 7946-0958 (a local number). The value keeps its last two digits.
_PHONE_KEY = (rf"(?:(?:home|work|mobile|cell|caller|contact|primary|alt|alternate|other|day|evening)"
              rf"{_WORD_SEP})?(?:phone|tel(?:ephone)?|mobile|cell(?:phone)?|msisdn|caller{_WORD_SEP}id)"
              rf"(?:{_WORD_SEP}(?:number|num|no|[123]))?")
_FORM_VALUE_CHAR = r"[^&\s\"'\\#]"
_PHONE_FORM_PAIR = re.compile(rf"(?:(?<![\w\-%])|(?<=%5[Bb]))({_PHONE_KEY})((?:\]|%5D)?=)"
                              rf"({_FORM_VALUE_CHAR}*\d{_FORM_VALUE_CHAR}*)", re.IGNORECASE)
_PHONE_JSON_PAIR = re.compile(rf"(?<=[\"\[.])({_PHONE_KEY})(\\?\"\s*:\s*)(\\?\"[^\"\\]*\d[^\"\\]*\\?\"|\d+)",
                              re.IGNORECASE)
_PHONE_KEY_HINTS = ("phone", "tel", "mobile", "cell", "msisdn", "caller")
# Every personal key holds one of these (lower-cased); "addr" alone, not in "client_addr".
_KEY_HINTS = ("name", "address", "street", "line", "number", '"addr', "addr=", "addr]", "addr%5d", "addr1",
              "addr2", "addr3", "addr_", "addr-", "addr ", *_PHONE_KEY_HINTS)
_KEY_LAST_PART = re.compile(r"[^\[\].]+(?=\]?$)")
# Label/value pairs, as Facebook's field_data ({"name": "first_name", "values": ["Jo"]}).
_LABEL_FIELDS = ("name", "key", "field", "label", "ref", "id")
_VALUE_FIELDS = ("value", "values", "answer", "text")

# --- secrets ---

_secrets: tuple[str, ...] = ()  # longest first, so a secret inside another is not half-masked
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Never show ``value``: not as is, JSON-escaped or percent-encoded (as in a URL)."""
    global _secrets
    # Short values would mask ordinary words; real tokens are long.
    if not value or len(value) < 6:
        return
    forms = {value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1],
             quote(value, safe=""), quote_plus(value, safe="")}
    with _secrets_lock:
        _secrets = tuple(sorted(set(_secrets) | forms, key=len, reverse=True))


def register_secrets(values: Iterable[str | None]) -> None:
    for value in values:
        register_secret(value)


def register_env_secrets(names: Iterable[str], env: Mapping[str, str]) -> None:
    """Register the values of the named environment variables (those that are set)."""
    register_secrets(env.get(name) for name in names)


def register_url_password(url: str | None) -> None:
    """A database URL's password, should it ever appear in an error message."""
    if not url:
        return
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password:
        register_secrets([password, unquote(password)])


# --- masking ---

def mask_secrets(text: str) -> str:
    """``text`` with registered secrets masked and personal data left as it is (for a reveal)."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, SECRET_MASK)
    return text


def mask_text(text: str) -> str:
    """``text`` with every secret, phone, email, and keyed name or address masked."""
    text = mask_secrets(text)
    if _may_hold_personal_key(text):
        text = _FORM_PAIR.sub(_mask_form_pair, _JSON_PAIR.sub(_mask_json_pair, text))
        text = _PHONE_FORM_PAIR.sub(_mask_form_phone, _PHONE_JSON_PAIR.sub(_mask_json_phone, text))
    if "@" in text or "%40" in text:
        text = _EMAIL.sub(_mask_email_match, text)
    return _mask_phones(text)


def _mask_phones(text: str) -> str:
    """Runs the phone scan only over the quoted stretches (or the whole text) a hint is in.

    No phone match holds a double quote, and one counts as a non-word character on either
    side of a match, so scanning from the quote before a hint to the quote after it finds
    exactly what scanning the whole text would. A log line is mostly ids and numbers in
    quotes; a random request id alone holds a run of eight digits about half the time.
    """
    hint = _PHONE_HINT.search(text)
    if hint is None:
        return text
    pieces: list[str] = []
    done = 0
    while hint is not None:
        start = text.rfind('"', done, hint.start()) + 1 or done
        end = text.find('"', hint.end())
        end = len(text) if end < 0 else end
        pieces += (text[done:start], _PHONE.sub(_mask_phone_match, text[start:end]))
        done = end
        hint = _PHONE_HINT.search(text, end)
    pieces.append(text[done:])
    return "".join(pieces)


def _may_hold_personal_key(text: str) -> bool:
    lowered = text.lower()
    for hint in _KEY_HINTS:  # noqa: SIM110 - a loop, not any(): no generator on every log line
        if hint in lowered:
            return True
    return False


def mask_value(value: Any, *, personal: bool = False) -> Any:
    """``value`` with :func:`mask_text` applied to every string in it, dicts and lists walked.

    A string, number or list under a name or address key (:data:`PERSONAL_KEY`) is
    masked whole (:func:`mask_personal`), as is ``value`` itself with ``personal=True``;
    a dict under such a key is walked by its own keys. Tuples come back as lists.
    """
    if isinstance(value, str):
        return mask_personal(value) if personal else mask_text(value)
    if isinstance(value, Mapping):
        # An address given as parts ({"street": ..., "city": ...}): its own keys decide.
        return _mask_mapping(value)
    if isinstance(value, (list, tuple)):
        return [mask_value(item, personal=personal) for item in value]
    if personal and isinstance(value, (int, float)) and not isinstance(value, bool):
        return mask_personal(str(value))  # a house number alone is still part of an address
    return value


def mask_body(body: bytes | str) -> str:
    """A stored request body as text, masked: JSON is walked (and shown compact), anything else scanned.

    Walking finds names and addresses in label/value pairs, which no scan of the text can.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            parsed = json.loads(text)
        except ValueError:
            pass
        else:
            return json.dumps(mask_value(parsed), ensure_ascii=False)
    return mask_text(text)


def is_personal_key(key: object) -> bool:
    """Whether values under ``key`` are names or street addresses (by the key's last part)."""
    if not isinstance(key, str) or not key:
        return False
    last = _KEY_LAST_PART.search(key)
    return last is not None and PERSONAL_KEY.fullmatch(last.group(0).strip()) is not None


def mask_personal(text: str) -> str:
    """A name or address: its first character, if a letter or digit, then ``***``; empty stays empty."""
    if not text:
        return text
    return (text[0] + "***") if text[0].isalnum() else "***"


def mask_phone(text: str) -> str:
    digits = _NOT_DIGIT.sub("", _ESCAPE.sub("", text))
    return "***" + digits[-2:] if len(digits) >= 4 else "***"


def mask_email(text: str) -> str:
    return _EMAIL.sub(_mask_email_match, text)


def _mask_mapping(value: Mapping[Any, Any]) -> dict[Any, Any]:
    label = next((value[k] for k in _LABEL_FIELDS if isinstance(value.get(k), str)), None)
    pair_is_personal = is_personal_key(label)
    masked: dict[Any, Any] = {}
    for key, item in value.items():
        if pair_is_personal and key in _VALUE_FIELDS:
            masked[key] = mask_value(item, personal=True)
        elif key in _LABEL_FIELDS and item is label:
            masked[key] = item  # a field's name ("first_name"), not a person's
        else:
            masked[key] = mask_value(item, personal=is_personal_key(key))
    return masked


def _mask_json_pair(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)}{match.group(3)}{mask_personal(match.group(4))}{match.group(3)}"


def _mask_form_pair(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)}{mask_personal(match.group(3))}"


def _mask_form_phone(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)}{mask_phone(match.group(3))}"


def _mask_json_phone(match: re.Match[str]) -> str:
    # A number becomes a string ("***12"), quoted as its key is, so the JSON stays valid.
    quote_mark = '\\"' if match.group(2).startswith("\\") else '"'
    value = match.group(3)
    return f"{match.group(1)}{match.group(2)}{quote_mark}{mask_phone(value)}{quote_mark}"


def _mask_email_match(match: re.Match[str]) -> str:
    return f"{match.group(1)}***@{match.group(2)}"


def _mask_phone_match(match: re.Match[str]) -> str:
    found = match.group(0)
    kind = match.lastgroup or "nanp"
    if kind in _MIN_DIGITS:
        digits = _NOT_DIGIT.sub("", _ESCAPE.sub("", found))
        if kind == "intl" and digits.startswith("00") and not found.startswith(("+", "%2B")):
            digits = digits[2:]
        if len(digits) < _MIN_DIGITS[kind]:
            return found
    return mask_phone(found)
