"""Value transforms (``transform:`` in a mapping), each compiled once.

``compile_transform`` checks its argument when the mapping loads (ValueError)
and returns a small function. At map time that function returns the new value,
or raises :class:`TransformError` naming a stable rule, which the compiler
turns into a refusal of the lead. ``None`` (a missing value) always stays
``None``; no transform invents a value, except ``present``, whose whole point
is to say that a value is missing.

Two transforms need more than the value: ``present`` also runs on an empty
value, ``choice`` reads the option list the payload carries. They are
:class:`Step` objects whose flags tell the field resolver to call them so.
"""
from __future__ import annotations

import difflib
import json
import re
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from relay import words
from relay.mapping import paths, us_states

Transform = Callable[[Any], Any]

TRANSFORM_NAMES: tuple[str, ...] = (
    "phone", "email", "strip", "lower", "upper", "title", "digits", "slice", "truncate",
    "regex_extract", "regex_replace", "lookup", "bool", "datetime", "first", "join",
    "integer", "string", "present", "choice",
)
TRACKDRIVE_TIME = "%Y-%m-%d %H:%M:%S %z"
# Form builders also say y/n and checked/unchecked.
TRUE_WORDS = words.TRUE_WORDS | {"y", "checked"}
FALSE_WORDS = words.FALSE_WORDS | {"n", "unchecked"}

_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$"
)
_NOT_DIGITS = re.compile(r"[^0-9]+")
_NANP_CHARS = re.compile(r"^\s*\+?[0-9 ().\-]+$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_EPOCH = re.compile(r"^[0-9]{9,13}(?:\.[0-9]+)?$")
_ZONE_DIRECTIVE = re.compile(r"%[zZ]|%:z")


class TransformError(Exception):
    """A value that cannot be transformed; ``rule`` is stable (phone, email, ...)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


class Step:
    """A transform that reads an empty value (``reads_empty``) or the lead's payload
    (``reads_payload``); called as ``step.apply(value, payload)``."""

    reads_empty = False
    reads_payload = False

    def apply(self, value: Any, payload: Any) -> Any:
        raise NotImplementedError

    def __call__(self, value: Any) -> Any:
        return self.apply(value, None)


def compile_transform(name: str, arg: Any | None, *, phone_region: str = "US") -> Transform:
    builder = _BUILDERS.get(name)
    if builder is None:
        raise ValueError(f"unknown transform {name!r}{_closest(name)}")
    if name == "phone":
        return builder(arg, phone_region)
    return builder(arg)


def _closest(name: str) -> str:
    close = difflib.get_close_matches(str(name), TRANSFORM_NAMES, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; known transforms: {', '.join(TRANSFORM_NAMES)}"


# --- helpers shared by the transforms ---

def as_text(value: Any) -> str:
    """A scalar as text; booleans read the way Trackdrive and vendors write them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def elementwise(function: Transform) -> Transform:
    """Apply ``function`` to a scalar, or to each element of a list; None stays None."""

    def apply(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list):
            return [None if item is None else function(item) for item in value]
        return function(value)

    return apply


def _blank(value: Any) -> bool:
    return isinstance(value, str) and not value.strip()


def _no_arg(name: str, arg: Any) -> None:
    if arg is not None:
        raise ValueError(f"transform {name!r} takes no argument")


def _int_arg(name: str, value: Any) -> int:
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, bool) or not (isinstance(text, int) or (isinstance(text, str) and _INTEGER.match(text))):
        raise ValueError(f"transform {name!r} needs an integer, got {value!r}")
    return int(text)


def _regex_arg(name: str, pattern: Any) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"transform {name!r} needs a regular expression")
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ValueError(f"transform {name!r}: invalid regular expression: {error}") from None


def _mapping_arg(name: str, arg: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(arg, dict):
        raise ValueError(f"transform {name!r} needs a mapping with keys {', '.join(sorted(allowed))}")
    unknown = set(arg) - allowed
    if unknown:
        raise ValueError(f"transform {name!r}: unknown key {sorted(unknown)[0]!r}; "
                         f"allowed: {', '.join(sorted(allowed))}")
    return arg


# --- phone ---

def _is_fictional_nanp(number: phonenumbers.PhoneNumber) -> bool:
    # 555-0100..0199 is reserved for fiction in every NANP area code; vendors' test
    # leads and our samples use it. libphonenumber may call such numbers invalid in
    # some area codes, so they are accepted when otherwise well formed.
    national = str(number.national_number)
    return (number.country_code == 1 and len(national) == 10 and national[0] in "23456789"
            and national[3:8] == "55501")


PHONE_ACCEPT = ("valid", "possible")


def _phone(arg: Any, default_region: str) -> Transform:
    options = _mapping_arg("phone", arg, {"region", "accept"}) if isinstance(arg, dict) else {"region": arg}
    region = options.get("region") if options.get("region") is not None else default_region
    if not isinstance(region, str) or region.strip().upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"transform 'phone': unknown region {region!r} (use a code like US or GB)")
    region = region.strip().upper()
    accept = options.get("accept", "valid")
    if accept not in PHONE_ACCEPT:
        raise ValueError(f"transform 'phone': accept must be valid or possible, not {accept!r}")
    if accept == "possible":
        return elementwise(_possible_phone(region))
    nanp = phonenumbers.country_code_for_region(region) == 1
    e164 = phonenumbers.PhoneNumberFormat.E164

    def phone(value: Any) -> Any:
        if _blank(value):
            return None
        text = as_text(value)
        national = _nanp_digits(text) if nanp else None
        if national is not None:
            if _valid_nanp(int(national), region):
                return "+1" + national
            raise TransformError("phone", f"{text!r} is not a valid phone number")
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            raise TransformError("phone", f"{text!r} is not a phone number") from None
        if not _valid_number(number):
            raise TransformError("phone", f"{text!r} is not a valid phone number")
        return phonenumbers.format_number(number, e164)

    return elementwise(phone)


def _possible_phone(region: str) -> Transform:
    """A number of a possible length for its country, assigned or not (a new range, say)."""
    e164 = phonenumbers.PhoneNumberFormat.E164

    def phone(value: Any) -> Any:
        if _blank(value):
            return None
        text = as_text(value)
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            raise TransformError("phone", f"{text!r} is not a phone number") from None
        if not phonenumbers.is_possible_number(number):
            raise TransformError("phone", f"{text!r} is not a possible phone number")
        return phonenumbers.format_number(number, e164)

    return phone


def _nanp_digits(text: str) -> str | None:
    """The 10 national digits of a plainly written North American number, else None.

    Most leads carry such numbers; reading them directly skips phonenumbers.parse,
    which costs more than the rest of a lead's mapping. Anything unusual (letters,
    extensions, other country codes) still goes through the full parser.
    """
    if not _NANP_CHARS.match(text):
        return None
    digits = _NOT_DIGITS.sub("", text)
    if len(digits) == 11 and digits[0] == "1":
        return digits[1:]
    if len(digits) == 10 and "+" not in text:
        return digits
    return None


def _valid_nanp(national_number: int, region: str) -> bool:
    number = phonenumbers.PhoneNumber(country_code=1, national_number=national_number)
    # Checking the default region first is cheap; other NANP countries need the full check.
    return phonenumbers.is_valid_number_for_region(number, region) or _valid_number(number)


def _valid_number(number: phonenumbers.PhoneNumber) -> bool:
    return phonenumbers.is_valid_number(number) or (
        phonenumbers.is_possible_number(number) and _is_fictional_nanp(number))


# --- text ---

def _email(arg: Any) -> Transform:
    _no_arg("email", arg)

    def email(value: Any) -> Any:
        if _blank(value):
            return None
        text = as_text(value).strip().lower()
        if len(text) > 254 or not _EMAIL.match(text):
            raise TransformError("email", f"{text!r} is not a valid email address")
        return text

    return elementwise(email)


def _text_transform(name: str, function: Callable[[str], str]) -> Callable[[Any], Transform]:
    def build(arg: Any) -> Transform:
        _no_arg(name, arg)
        return elementwise(lambda value: function(as_text(value)))

    return build


def _slice(arg: Any) -> Transform:
    if not isinstance(arg, list) or not 1 <= len(arg) <= 2:
        raise ValueError("transform 'slice' needs [start, end]")
    start, end = (_bound(arg[0]), _bound(arg[1]) if len(arg) == 2 else None)
    return elementwise(lambda value: as_text(value)[start:end])


def _bound(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _int_arg("slice", value)


def _truncate(arg: Any) -> Transform:
    limit = _int_arg("truncate", arg)
    if limit < 0:
        raise ValueError("transform 'truncate' needs a length of 0 or more")
    return elementwise(lambda value: as_text(value)[:limit])


def _regex_extract(arg: Any) -> Transform:
    pattern = _regex_arg("regex_extract", arg)
    group = 1 if pattern.groups else 0

    def extract(value: Any) -> Any:
        match = pattern.search(as_text(value))
        return match.group(group) if match else None

    return elementwise(extract)


def _regex_replace(arg: Any) -> Transform:
    options = _mapping_arg("regex_replace", arg, {"pattern", "with"})
    pattern = _regex_arg("regex_replace", options.get("pattern"))
    replacement = options.get("with") or ""
    if not isinstance(replacement, str):
        raise ValueError("transform 'regex_replace': 'with' must be text")
    try:
        # sub() parses the replacement before scanning, so group references are checked now.
        pattern.sub(replacement, "")
    except (re.error, IndexError) as error:
        raise ValueError(f"transform 'regex_replace': invalid replacement: {error}") from None
    return elementwise(lambda value: pattern.sub(replacement, as_text(value)))


# --- lookup ---

def _lookup(arg: Any) -> Transform:
    options = {"table": "us_states"} if arg == "us_states" else _mapping_arg("lookup", arg, {"table", "default"})
    table, default = options.get("table"), options.get("default")
    if table == "us_states":
        # Unknown states refuse by default: a buyer filtering on state needs a real code.
        states = {**us_states.STATE_CODES, **{code: code for code in us_states.CODES}}
        return elementwise(_table_lookup(states, default or "refuse", us_states.normalize,
                                         miss="is not a US state or territory"))
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ValueError("transform 'lookup' needs 'us_states' or {table: {from: to, ...}, default: ...}")
    return elementwise(_table_lookup({str(k): v for k, v in table.items()}, default or "keep", _fold))


def _fold(text: str) -> str:
    return text.strip().casefold()


def _table_lookup(table: dict[str, str], default: Any, normalize: Callable[[str], str], *,
                  miss: str = "is not in the lookup table") -> Transform:
    """Exact key first, then the normalized key; ``default`` says what a miss gives."""
    if not isinstance(default, str):
        raise ValueError("transform 'lookup': default must be keep, empty, refuse or a constant")
    normalized = {normalize(key): value for key, value in table.items()}

    def lookup(value: Any) -> Any:
        text = as_text(value)
        found = table.get(text)
        if found is None:
            found = normalized.get(normalize(text))
        if found is not None:
            return found
        if default == "keep":
            return value
        if default == "empty":
            return None
        if default == "refuse":
            raise TransformError("lookup", f"{text!r} {miss}")
        return default

    return lookup


# --- bool, integer, string ---

def to_bool(value: Any) -> bool:
    """Read a boolean word; raises TransformError(rule="boolean") for anything else."""
    answer = words.boolean_word(value, TRUE_WORDS, FALSE_WORDS)
    if answer is None:
        raise TransformError("boolean", f"{as_text(value)!r} is not a boolean (use yes/no, true/false, 1/0, on/off)")
    return answer


def _bool(arg: Any) -> Transform:
    if arg is None:
        return elementwise(lambda value: None if _blank(value) else to_bool(value))
    options = _mapping_arg("bool", arg, {"true", "false"})
    if set(options) != {"true", "false"} or not all(isinstance(v, str) for v in options.values()):
        raise ValueError("transform 'bool' needs both 'true' and 'false' texts")
    words = {True: options["true"], False: options["false"]}
    return elementwise(lambda value: None if _blank(value) else words[to_bool(value)])


def _integer(arg: Any) -> Transform:
    _no_arg("integer", arg)

    def integer(value: Any) -> Any:
        if _blank(value):
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER.match(value.strip()) and len(value) < 40:
            return int(value.strip())
        raise TransformError("integer", f"{as_text(value)!r} is not an integer")

    return elementwise(integer)


def _string(arg: Any) -> Transform:
    _no_arg("string", arg)
    return elementwise(as_text)


# --- lists ---

def _first(arg: Any) -> Transform:
    _no_arg("first", arg)

    def first(value: Any) -> Any:
        if isinstance(value, list):
            return value[0] if value else None
        return value

    return first


def _join(arg: Any) -> Transform:
    separator = ", " if arg is None else arg
    if not isinstance(separator, str):
        raise ValueError("transform 'join' needs a separator text")

    def join(value: Any) -> Any:
        if isinstance(value, list):
            return separator.join(as_text(item) for item in value if item is not None)
        return value

    return join


# --- present, choice ---

class _Present(Step):
    reads_empty = True

    def __init__(self, answers: tuple[Any, Any]) -> None:
        self.answers = answers  # (when present, when empty)

    def apply(self, value: Any, payload: Any) -> Any:
        if isinstance(value, list):
            present = any(not paths.is_empty(item) for item in value)
        else:
            present = not paths.is_empty(value)
        return self.answers[0] if present else self.answers[1]


def _present(arg: Any) -> Transform:
    if arg is None:
        return _Present((True, False))
    options = _mapping_arg("present", arg, {"true", "false"})
    if set(options) != {"true", "false"} or not all(isinstance(v, str) for v in options.values()):
        raise ValueError("transform 'present' needs both 'true' and 'false' texts")
    return _Present((options["true"], options["false"]))


class _Choice(Step):
    reads_payload = True

    def __init__(self, options: paths.CompiledPath, id_key: str, label_key: str, default: str) -> None:
        self.options = options
        self.id_key = id_key
        self.label_key = label_key
        self.default = default

    def apply(self, value: Any, payload: Any) -> Any:
        if value is None:
            return None
        labels = self.labels(payload)
        if isinstance(value, list):
            return [self.label_of(item, labels) for item in value if item is not None]
        return self.label_of(value, labels)

    def labels(self, payload: Any) -> dict[str, Any]:
        labels: dict[str, Any] = {}
        for found in self.options.values(payload) if payload is not None else ():
            for option in found if isinstance(found, list) else [found]:
                if isinstance(option, dict) and option.get(self.id_key) is not None:
                    labels.setdefault(as_text(option[self.id_key]), option.get(self.label_key))
        return labels

    def label_of(self, value: Any, labels: dict[str, Any]) -> Any:
        text = as_text(value)
        label = labels.get(text)
        if label is None:
            label = labels.get(text.strip())
        if label is not None:
            return label
        if self.default == "keep":
            return value
        if self.default == "empty":
            return None
        if self.default == "refuse":
            raise TransformError("choice", f"{text!r} is not one of the choices at {self.options.text}")
        return self.default


def _choice(arg: Any) -> Transform:
    options = _mapping_arg("choice", arg, {"options", "id", "label", "default"})
    where = options.get("options")
    if not isinstance(where, str) or not where.strip().startswith("$"):
        raise ValueError("transform 'choice' needs options: a JSONPath to the list of choices")
    id_key, label_key = options.get("id", "id"), options.get("label", "label")
    default = options.get("default", "keep")
    if not all(isinstance(key, str) and key for key in (id_key, label_key)):
        raise ValueError("transform 'choice': id and label are key names, like id and label")
    if not isinstance(default, str):
        raise ValueError("transform 'choice': default must be keep, empty, refuse or a constant")
    return _Choice(paths.compile_path(where), id_key, label_key, default)


# --- datetime ---

def _datetime(arg: Any) -> Transform:
    options = {} if arg is None else _mapping_arg("datetime", arg, {"from", "to", "tz"})
    zone = _zone(options.get("tz", "UTC"))
    formats = _from_formats(options.get("from"))
    output = options.get("to", TRACKDRIVE_TIME)
    if not isinstance(output, str) or not output:
        raise ValueError("transform 'datetime': 'to' must be a strftime format")
    to_utc = bool(_ZONE_DIRECTIVE.search(output))

    def convert(value: Any) -> Any:
        if _blank(value):
            return None
        moment = _parse_moment(value, formats, zone)
        moment = moment.astimezone(UTC if to_utc else zone)
        return moment.strftime(output)

    return elementwise(convert)


def _zone(name: Any) -> tzinfo:
    if not isinstance(name, str):
        raise ValueError("transform 'datetime': 'tz' must be an IANA zone name like America/Chicago")
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"transform 'datetime': unknown time zone {name!r}") from None


def _from_formats(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    formats = (raw,) if isinstance(raw, str) else tuple(raw) if isinstance(raw, list) else None
    if not formats or not all(isinstance(f, str) and f for f in formats):
        raise ValueError("transform 'datetime': 'from' must be a strptime format or a list of them")
    sample = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
    for fmt in formats:
        try:
            datetime.strptime(sample.strftime(fmt), fmt)
        except ValueError as error:
            raise ValueError(f"transform 'datetime': invalid format {fmt!r}: {error}") from None
    return formats


def _parse_moment(value: Any, formats: tuple[str, ...], zone: tzinfo) -> datetime:
    moment = _parse_naive_or_aware(value, formats)
    if moment is None:
        expected = " or ".join(repr(f) for f in formats) if formats else "ISO 8601 or epoch seconds"
        raise TransformError("time", f"{as_text(value)!r} is not a time ({expected})")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


def _parse_naive_or_aware(value: Any, formats: tuple[str, ...]) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if formats:
        return _strptime_any(text, formats)
    if _EPOCH.match(text):
        return _from_epoch(float(text))
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _from_epoch(seconds: float) -> datetime | None:
    if seconds >= 1e11:  # 13 digits: the sender used milliseconds
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _strptime_any(text: str, formats: tuple[str, ...]) -> datetime | None:
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


_BUILDERS: dict[str, Callable[..., Transform]] = {
    "phone": _phone,
    "email": _email,
    "strip": _text_transform("strip", str.strip),
    "lower": _text_transform("lower", str.lower),
    "upper": _text_transform("upper", str.upper),
    "title": _text_transform("title", str.title),
    "digits": _text_transform("digits", lambda text: _NOT_DIGITS.sub("", text)),
    "slice": _slice,
    "truncate": _truncate,
    "regex_extract": _regex_extract,
    "regex_replace": _regex_replace,
    "lookup": _lookup,
    "bool": _bool,
    "datetime": _datetime,
    "first": _first,
    "join": _join,
    "integer": _integer,
    "string": _string,
    "present": _present,
    "choice": _choice,
}
