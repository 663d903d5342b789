import pytest

from relay.mapping.model import TrackdriveCall
from relay.mapping.trackdrive import ACTIONS, RULES, SECRET_PARAMS, ParamError, build_call, coerce, params_for

REFERENCE_PARAMS = {
    "lead_token", "caller_id", "email", "contact_field_type", "schedule_callback_at",
    "schedule_callback_in_seconds", "update_all_matching_leads", "apply_to", "unblock_contact", "blocked",
    "assign_trackdrive_number", "assign_sms_number", "expire_existing", "delete_existing", "update_only",
    "restart_schedule", "auto_format_nested_fields", "next_action_at", "hours_to_expire",
    "max_contact_attempts", "data",
}


def test_rules_cover_the_reference_and_help_page_params():
    assert REFERENCE_PARAMS <= set(RULES)
    assert {"traffic_source_id": "string", "lead_priority": "integer", "expires_in": "integer",
            "schedule_lead_token": "string", "offer_lead_token": "string"}.items() <= RULES.items()
    assert set(RULES.values()) == {"string", "time", "integer", "boolean", "apply_to", "hash"}


def test_actions_and_params():
    assert {name: spec[0] for name, spec in ACTIONS.items()} == {
        "create_lead": "POST", "caller_opt_out": "PUT", "caller_remove": "POST",
        "caller_move_to_end_of_schedule": "PUT"}
    assert "hours_to_expire" in params_for("create_lead") and "data" not in params_for("create_lead")
    assert params_for("caller_opt_out") == SECRET_PARAMS | {"caller_id"}
    with pytest.raises(ValueError):
        params_for("delete_everything")


@pytest.mark.parametrize("param, value, expected", [
    ("blocked", "YES", True), ("blocked", " on", True), ("blocked", "1", True), ("blocked", True, True),
    ("update_only", "off", False), ("update_only", "0", False), ("update_only", 0, False),
    ("hours_to_expire", "42", 42), ("hours_to_expire", 42, 42), ("hours_to_expire", " -1 ", -1),
    ("schedule_callback_at", "2024-11-10 02:04:04 +0000", "2024-11-10 02:04:04 +0000"),
    ("next_action_at", "2024-11-10 02:04:04 -0600", "2024-11-10 02:04:04 -0600"),
    ("apply_to", "calls", "calls"),
    ("caller_id", "+15125550147", "+15125550147"), ("traffic_source_id", 1234, "1234"),
    ("data", {"a": "b"}, {"a": "b"}),
])
def test_coerce_accepts(param, value, expected):
    assert coerce(param, value) == expected
    assert type(coerce(param, value)) is type(expected)


@pytest.mark.parametrize("param, value, rule", [
    ("blocked", "maybe", "boolean"), ("blocked", "y", "boolean"), ("blocked", 2, "boolean"),
    ("hours_to_expire", "4.2", "integer"), ("hours_to_expire", True, "integer"), ("hours_to_expire", "", "integer"),
    ("hours_to_expire", 4.2, "integer"),
    ("schedule_callback_at", "2024-11-10T02:04:04Z", "time"),
    ("schedule_callback_at", "2024-1-10 02:04:04 +0000", "time"),
    ("schedule_callback_at", "2024-02-30 02:04:04 +0000", "time"), ("next_action_at", 1700000000, "time"),
    ("apply_to", "leads", "apply_to"),
    ("caller_id", True, "string"), ("email", ["a"], "string"), ("email", None, "string"),
    ("data", "x", "hash"),
    ("favourite_colour", "blue", "unknown"),
])
def test_coerce_refuses(param, value, rule):
    with pytest.raises(ParamError) as caught:
        coerce(param, value)
    assert caught.value.rule == rule
    assert param in caught.value.message


def test_create_lead_call():
    call = build_call("create_lead",
                      {"hours_to_expire": 24, "email": "a@example.com", "caller_id": "+15125550147"},
                      {"first_name": "Rosa"},
                      secrets={"auth_token": "ACME_AUTH", "lead_token": "ACME_LEAD"},
                      base_url="https://acme.trackdrive.com", route="life")
    assert isinstance(call, TrackdriveCall)
    assert (call.action, call.method, call.path) == ("create_lead", "POST", "/api/v1/leads")
    assert call.query == {"lead_token": "${ACME_LEAD}", "auth_token": "${ACME_AUTH}"}
    assert list(call.body) == ["lead_token", "auth_token", "caller_id", "email", "hours_to_expire", "data"]
    assert call.body["lead_token"] == "${ACME_LEAD}" and call.body["data"] == {"first_name": "Rosa"}
    assert call.secrets == {"auth_token": "ACME_AUTH", "lead_token": "ACME_LEAD"}
    assert (call.base_url, call.route) == ("https://acme.trackdrive.com", "life")
    url, query, body = call.resolve({"ACME_LEAD": "tok", "ACME_AUTH": "auth"}, "https://x")
    assert url == "https://acme.trackdrive.com/api/v1/leads"
    assert query["lead_token"] == body["lead_token"] == "tok" and body["auth_token"] == "auth"


def test_create_lead_without_data_has_no_data_key():
    call = build_call("create_lead", {"caller_id": "+1"}, {}, secrets={"lead_token": "T"}, base_url=None, route=None)
    assert "data" not in call.body


@pytest.mark.parametrize("action, method", [("caller_opt_out", "PUT"), ("caller_remove", "POST"),
                                            ("caller_move_to_end_of_schedule", "PUT")])
def test_caller_actions(action, method):
    call = build_call(action, {"caller_id": "+15125550147"}, {}, secrets={"lead_token": "T"},
                      base_url=None, route=None)
    assert call.method == method
    assert call.path == f"/api/v1/leads/%2B15125550147/{action}"
    assert call.query == call.body == {"lead_token": "${T}"}


def test_build_call_rejects_misuse():
    with pytest.raises(ValueError):
        build_call("caller_opt_out", {}, {}, secrets={"lead_token": "T"}, base_url=None, route=None)
    with pytest.raises(ValueError):
        build_call("caller_opt_out", {"caller_id": "1", "email": "x"}, {}, secrets={}, base_url=None, route=None)
    with pytest.raises(ValueError):
        build_call("create_lead", {"lead_token": "raw"}, {}, secrets={}, base_url=None, route=None)
    with pytest.raises(ValueError):
        build_call("create_lead", {}, {}, secrets={"caller_id": "X"}, base_url=None, route=None)
    with pytest.raises(ValueError):
        build_call("launch", {}, {}, secrets={}, base_url=None, route=None)
