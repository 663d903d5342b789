from __future__ import annotations

import pytest
from flask.testing import FlaskClient

LEADS = "/api/v1/leads"


def create(client: FlaskClient, body: dict | None = None, query: str = "lead_token=t1"):
    return client.post(f"{LEADS}?{query}", json=body if body is not None else {})


def test_a_valid_lead_is_created(client: FlaskClient) -> None:
    response = create(client, {"caller_id": "+15551234567", "email": "a@b.co",
                               "data": {"first_name": "Ann", "loan_amount": "500"}})
    assert response.status_code == 201
    body = response.get_json()
    assert body["success"] is True
    assert body["lead"]["status"] == "active"
    assert body["lead"]["caller_id"] == "+15551234567"
    assert isinstance(body["lead"]["id"], int) and body["lead"]["uuid"]
    assert "trackdrive_number_plain" not in body


def test_lead_ids_increase(client: FlaskClient) -> None:
    first = create(client, {"caller_id": "+15551234567"}).get_json()["lead"]["id"]
    assert create(client, {"caller_id": "+15551234567"}).get_json()["lead"]["id"] == first + 1


@pytest.mark.parametrize("flag", ["1", "true", "yes", "on", "TRUE", True, 1])
def test_assign_trackdrive_number_returns_one(client: FlaskClient, flag: object) -> None:
    body = create(client, {"caller_id": "+15551234567", "assign_trackdrive_number": flag}).get_json()
    assert body["trackdrive_number_plain"].startswith("+1")


def test_query_string_style_with_nested_data(client: FlaskClient) -> None:
    response = client.post(f"{LEADS}?lead_token=t1&caller_id=17193132645&email=john@gmail.com"
                           "&custom_token=the_value&data[loan_amount]=500")
    assert response.status_code == 201
    assert response.get_json()["lead"]["caller_id"] == "17193132645"


def test_form_posts_are_read_too(client: FlaskClient) -> None:
    response = client.post(LEADS, data={"lead_token": "t1", "caller_id": "+15551234567"})
    assert response.status_code == 201


@pytest.mark.parametrize("body, fragment", [
    ({"caller_id": "555-1234"}, "caller_id"),
    ({"caller_id": "+0123456789"}, "caller_id"),
    ({"caller_id": 15551234567}, "caller_id must be a String"),
    ({"blocked": "maybe"}, "blocked must be a boolean"),
    ({"update_only": 2}, "update_only must be a boolean"),
    ({"hours_to_expire": "ten"}, "hours_to_expire must be an Integer"),
    ({"max_contact_attempts": 2.5}, "max_contact_attempts must be an Integer"),
    ({"schedule_callback_in_seconds": True}, "schedule_callback_in_seconds must be an Integer"),
    ({"schedule_callback_at": "tomorrow"}, "schedule_callback_at must be a valid time"),
    ({"next_action_at": "2024-11-10 02:04:04"}, "next_action_at must be a valid time"),
    ({"apply_to": "leads"}, "apply_to must be one of: calls"),
    ({"data": "a=b"}, "data must be a Hash"),
    ({"data": ["x"]}, "data must be a Hash"),
    ({"data": {"First Name": "Ann"}}, "First Name"),
    ({"data": {"first-name": "Ann"}}, "first-name"),
    ({"data": {"address": {"city": "X"}}}, "plain value"),
    ({"lead_token": ""}, "lead_token can't be blank"),
    ({"lead_token": 5}, "lead_token must be a String"),
])
def test_invalid_parameters_are_refused_with_422(client: FlaskClient, body: dict, fragment: str) -> None:
    response = create(client, body)
    assert response.status_code == 422
    payload = response.get_json()
    assert payload["success"] is False
    assert any(fragment in error for error in payload["errors"]), payload


@pytest.mark.parametrize("body", [
    {"schedule_callback_at": "2024-11-10 02:04:04 +0000"},
    {"next_action_at": "2024-11-10T02:04:04+00:00"},
    {"hours_to_expire": "12", "max_contact_attempts": 3, "schedule_callback_in_seconds": "3600"},
    {"blocked": "off", "expire_existing": False, "delete_existing": 0, "restart_schedule": "no"},
    {"apply_to": "calls"},
    {"data": {"a1_b2": 1, "x": None, "y": True}},
])
def test_valid_parameters_pass(client: FlaskClient, body: dict) -> None:
    assert create(client, {"caller_id": "+15551234567", **body}).status_code == 201


def test_all_errors_are_listed_together(client: FlaskClient) -> None:
    payload = create(client, {"caller_id": "1", "blocked": "x", "data": {"A": 1}}).get_json()
    assert len(payload["errors"]) == 3


def test_malformed_json_is_422(client: FlaskClient) -> None:
    response = client.post(f"{LEADS}?lead_token=t1", data=b"{not json",
                           content_type="application/json")
    assert response.status_code == 422
    assert response.get_json()["errors"] == ["body is not valid JSON"]


def test_a_json_array_body_is_422(client: FlaskClient) -> None:
    response = client.post(f"{LEADS}?lead_token=t1", json=[1, 2])
    assert response.status_code == 422


@pytest.mark.parametrize("method, action", [
    ("PUT", "caller_opt_out"), ("GET", "caller_opt_out"),
    ("POST", "caller_remove"), ("DELETE", "caller_remove"), ("GET", "caller_remove"),
    ("PUT", "caller_move_to_end_of_schedule"), ("POST", "caller_move_to_end_of_schedule"),
])
def test_caller_calls(client: FlaskClient, method: str, action: str) -> None:
    response = client.open(f"{LEADS}/%2B15551234567/{action}?lead_token=t1", method=method)
    assert response.status_code == 201
    assert response.get_json()["lead"]["caller_id"] == "+15551234567"


@pytest.mark.parametrize("method, action", [
    ("POST", "caller_opt_out"), ("PUT", "caller_remove"), ("GET", "caller_move_to_end_of_schedule"),
])
def test_caller_calls_refuse_other_methods(client: FlaskClient, method: str, action: str) -> None:
    assert client.open(f"{LEADS}/15551234567/{action}?lead_token=t1", method=method).status_code == 405


def test_caller_calls_take_the_token_from_the_body(client: FlaskClient) -> None:
    response = client.put(f"{LEADS}/15551234567/caller_opt_out", json={"lead_token": "t1"})
    assert response.status_code == 201


def test_caller_calls_require_a_lead_token(client: FlaskClient) -> None:
    response = client.put(f"{LEADS}/15551234567/caller_opt_out")
    assert response.status_code == 422
    assert "lead_token is required" in response.get_json()["errors"]


def test_caller_calls_check_the_caller_id(client: FlaskClient) -> None:
    response = client.put(f"{LEADS}/not-a-phone/caller_opt_out?lead_token=t1")
    assert response.status_code == 422
    assert "caller_id" in response.get_json()["errors"][0]


def test_unknown_tokens_are_refused_when_tokens_are_listed(client: FlaskClient) -> None:
    client.post("/_sandbox/behaviour", json={"tokens": ["good"]})
    assert create(client, {"caller_id": "+15551234567"}, query="lead_token=bad").status_code == 401
    assert create(client, {"caller_id": "+15551234567"}, query="lead_token=good").status_code == 201
    assert client.put(f"{LEADS}/15551234567/caller_opt_out?lead_token=bad").status_code == 401
