"""Trackdrive's parameter rules for the leads calls (docs/trackdrive-leads-api.txt).

Each function returns the list of error messages; an empty list means valid.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Mapping

BOOLEAN_WORDS = frozenset({"1", "true", "yes", "on", "0", "false", "no", "off"})
BOOLEAN_PARAMS = ("update_all_matching_leads", "unblock_contact", "blocked", "assign_trackdrive_number",
                  "assign_sms_number", "expire_existing", "delete_existing", "update_only",
                  "restart_schedule", "auto_format_nested_fields")
INTEGER_PARAMS = ("schedule_callback_in_seconds", "hours_to_expire", "max_contact_attempts",
                  "lead_priority", "expires_in", "traffic_source_id")
TIME_PARAMS = ("schedule_callback_at", "next_action_at")
STRING_PARAMS = ("lead_token", "schedule_lead_token", "offer_lead_token", "auth_token",
                 "caller_id", "email", "contact_field_type")
LEAD_TOKEN_PARAMS = ("lead_token", "schedule_lead_token", "offer_lead_token")
APPLY_TO_VALUES = ("calls",)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"

CALLER_ID = re.compile(r"^\+?[1-9][0-9]{6,14}$")
TOKEN_NAME = re.compile(r"^[a-z0-9_]+$")
INTEGER = re.compile(r"^[+-]?[0-9]+$")


def validate_create(params: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    errors += _strings(params)
    if "caller_id" in params and isinstance(params["caller_id"], str):
        errors += _caller_id(params["caller_id"])
    errors += _booleans(params)
    errors += _integers(params)
    errors += _times(params)
    errors += _apply_to(params)
    errors += _data(params)
    return errors


def validate_caller_call(caller_id: str, params: Mapping[str, Any]) -> list[str]:
    errors = _caller_id(caller_id) + _strings(params)
    if not lead_token_of(params):
        errors.append("lead_token is required")
    return errors


def is_true(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def lead_token_of(params: Mapping[str, Any]) -> Any:
    for name in LEAD_TOKEN_PARAMS:
        if name in params:
            return params[name]
    return None


def _strings(params: Mapping[str, Any]) -> list[str]:
    errors = []
    for name in STRING_PARAMS:
        if name in params and not isinstance(params[name], str):
            errors.append(f"{name} must be a String")
        elif name in LEAD_TOKEN_PARAMS and name in params and not params[name].strip():
            errors.append(f"{name} can't be blank")
    return errors


def _caller_id(value: str) -> list[str]:
    if CALLER_ID.match(value):
        return []
    return ["caller_id must be a phone number in E.164 form, e.g. +15551234567"]


def _booleans(params: Mapping[str, Any]) -> list[str]:
    return [f"{name} must be a boolean value: 1, true, yes, on, 0, false, no, off"
            for name in BOOLEAN_PARAMS if name in params and not _is_boolean(params[name])]


def _is_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return value in (0, 1)
    return isinstance(value, str) and value.strip().lower() in BOOLEAN_WORDS


def _integers(params: Mapping[str, Any]) -> list[str]:
    return [f"{name} must be an Integer" for name in INTEGER_PARAMS
            if name in params and not _is_integer(params[name])]


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and bool(INTEGER.match(value.strip()))


def _times(params: Mapping[str, Any]) -> list[str]:
    return [f"{name} must be a valid time: 2024-11-10 02:04:04 +0000" for name in TIME_PARAMS
            if name in params and not _is_time(params[name])]


def _is_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.strptime(value.strip(), TIME_FORMAT)
        return True
    except ValueError:
        pass
    try:
        # Trackdrive parses times leniently; ISO 8601 with an offset is accepted as well.
        return datetime.fromisoformat(value.strip()).tzinfo is not None
    except ValueError:
        return False


def _apply_to(params: Mapping[str, Any]) -> list[str]:
    if "apply_to" in params and params["apply_to"] not in APPLY_TO_VALUES:
        return ["apply_to must be one of: calls"]
    return []


def _data(params: Mapping[str, Any]) -> list[str]:
    if "data" not in params:
        return []
    data = params["data"]
    if not isinstance(data, dict):
        return ["data must be a Hash"]
    errors = []
    for key, value in data.items():
        if not TOKEN_NAME.match(str(key)):
            errors.append(f"data token name {key!r} may hold only lowercase letters, digits and underscores")
        if isinstance(value, (dict, list)):
            errors.append(f"data token {key!r} must be a plain value, not a nested {type(value).__name__}")
    return errors
