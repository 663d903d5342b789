"""Trackdrive's lead parameters, their rules, and building one API call.

The rules follow Trackdrive's reference (docs/trackdrive-leads-api.txt) plus the
parameters its help pages add (docs/trackdrive-notes.md). ``coerce`` checks a
value the same way whether it is a constant in a mapping file or a value taken
from a vendor's payload.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Mapping

from relay.mapping.model import TrackdriveCall, caller_path
from relay.words import boolean_word

# action -> (HTTP method, path pattern)
ACTIONS: dict[str, tuple[str, str]] = {
    "create_lead": ("POST", "/api/v1/leads"),
    "caller_opt_out": ("PUT", "/api/v1/leads/:caller_id/caller_opt_out"),
    "caller_remove": ("POST", "/api/v1/leads/:caller_id/caller_remove"),
    "caller_move_to_end_of_schedule": ("PUT", "/api/v1/leads/:caller_id/caller_move_to_end_of_schedule"),
}

SECRET_PARAMS = frozenset({"lead_token", "auth_token", "schedule_lead_token", "offer_lead_token"})
_SECRET_ORDER = ("lead_token", "schedule_lead_token", "offer_lead_token", "auth_token")

_BOOLEAN_PARAMS = (
    "update_all_matching_leads", "unblock_contact", "blocked", "assign_trackdrive_number",
    "assign_sms_number", "expire_existing", "delete_existing", "update_only", "restart_schedule",
    "auto_format_nested_fields",
)
RULES: dict[str, str] = {
    **{name: "string" for name in ("lead_token", "auth_token", "schedule_lead_token", "offer_lead_token",
                                   "caller_id", "email", "contact_field_type", "traffic_source_id")},
    **{name: "time" for name in ("schedule_callback_at", "next_action_at")},
    **{name: "integer" for name in ("schedule_callback_in_seconds", "hours_to_expire",
                                    "max_contact_attempts", "lead_priority", "expires_in")},
    **{name: "boolean" for name in _BOOLEAN_PARAMS},
    "apply_to": "apply_to",
    "data": "hash",
}

TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"
_TIME_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}$")
_INTEGER = re.compile(r"^[+-]?\d{1,18}$")
APPLY_TO_VALUES = ("calls",)


class ParamError(Exception):
    """A value Trackdrive would reject; ``rule`` names the broken rule."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


def params_for(action: str) -> frozenset[str]:
    """The parameters an action accepts (``data`` is its own section, not a parameter)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    if action == "create_lead":
        return frozenset(RULES) - {"data"}
    return SECRET_PARAMS | {"caller_id"}


def coerce(param: str, value: Any) -> Any:
    rule = RULES.get(param)
    if rule is None:
        raise ParamError("unknown", f"{param!r} is not a Trackdrive parameter")
    return _COERCERS[rule](param, value)


def _as_string(param: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ParamError("string", f"{param} must be text, got {_kind(value)}")


def _as_integer(param: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value.strip())
    raise ParamError("integer", f"{param} must be an integer, got {_show(value)}")


def _as_boolean(param: str, value: Any) -> bool:
    answer = boolean_word(value)
    if answer is None:
        raise ParamError("boolean", f"{param} must be one of 1, true, yes, on, 0, false, no, off; got {_show(value)}")
    return answer


def _as_time(param: str, value: Any) -> str:
    if isinstance(value, str) and _TIME_SHAPE.match(value):
        try:
            datetime.strptime(value, TIME_FORMAT)
            return value
        except ValueError:
            pass
    raise ParamError("time", f"{param} must be a time like 2024-11-10 02:04:04 +0000, got {_show(value)}")


def _as_apply_to(param: str, value: Any) -> str:
    if isinstance(value, str) and value.strip() in APPLY_TO_VALUES:
        return value.strip()
    raise ParamError("apply_to", f"{param} must be one of: {', '.join(APPLY_TO_VALUES)}; got {_show(value)}")


def _as_hash(param: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise ParamError("hash", f"{param} must be a hash, got {_kind(value)}")


_COERCERS = {"string": _as_string, "integer": _as_integer, "boolean": _as_boolean,
             "time": _as_time, "apply_to": _as_apply_to, "hash": _as_hash}


def _kind(value: Any) -> str:
    return {bool: "a boolean", dict: "a mapping", list: "a list", type(None): "nothing"}.get(
        type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def build_call(action: str, params: Mapping[str, Any], data: Mapping[str, Any], *,
               secrets: Mapping[str, str], base_url: str | None, route: str | None) -> TrackdriveCall:
    """The call for ``action``; secrets appear only as ``${ENV}`` placeholders."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    _check_secrets(secrets, params)
    placeholders = {param: "${" + secrets[param] + "}" for param in _SECRET_ORDER if param in secrets}
    method = ACTIONS[action][0]
    if action == "create_lead":
        path, body = caller_path(action, ""), _create_body(placeholders, params, data)
    else:
        path, body = _caller_path_for(action, params), dict(placeholders)
    return TrackdriveCall(action=action, method=method, path=path, query=dict(placeholders), body=body,
                          base_url=base_url, secrets=dict(secrets), route=route)


def _check_secrets(secrets: Mapping[str, str], params: Mapping[str, Any]) -> None:
    unknown = set(secrets) - SECRET_PARAMS
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]!r} is not a secret Trackdrive parameter")
    inline = SECRET_PARAMS & set(params)
    if inline:
        raise ValueError(f"{sorted(inline)[0]} must come from secrets, not from params")


def _create_body(placeholders: dict[str, str], params: Mapping[str, Any],
                 data: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = dict(placeholders)
    for first in ("caller_id", "email"):
        if first in params:
            body[first] = params[first]
    for name, value in params.items():
        body.setdefault(name, value)
    if data:
        body["data"] = dict(data)
    return body


def _caller_path_for(action: str, params: Mapping[str, Any]) -> str:
    extra = set(params) - {"caller_id"}
    if extra:
        raise ValueError(f"{action} accepts only caller_id and tokens, not {sorted(extra)[0]}")
    caller_id = params.get("caller_id")
    if caller_id is None or caller_id == "":
        raise ValueError(f"{action} needs caller_id")
    return caller_path(action, str(caller_id))
