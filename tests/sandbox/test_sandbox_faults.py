from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from relay.sandbox import Behaviour, create_sandbox_app

LEADS = "/api/v1/leads?lead_token=t1"
LEAD = {"caller_id": "+15551234567"}


def statuses(client: FlaskClient, count: int) -> list[int]:
    return [client.post(LEADS, json=LEAD, headers={"X-Relay-Lead-Id": f"L{n}"}).status_code
            for n in range(count)]


def test_fail_rate_answers_5xx_and_never_counts_as_accepted(client: FlaskClient) -> None:
    client.post("/_sandbox/behaviour", json={"fail_rate": 1})
    assert set(statuses(client, 5)) == {503}
    stats = client.get("/_sandbox/stats").get_json()
    assert (stats["received"], stats["accepted"]) == (5, 0)


def test_rate_429_sends_retry_after(client: FlaskClient) -> None:
    client.post("/_sandbox/behaviour", json={"rate_429": 1, "retry_after": 9})
    response = client.post(LEADS, json=LEAD)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "9"


def test_faults_come_before_validation(client: FlaskClient) -> None:
    client.post("/_sandbox/behaviour", json={"fail_rate": 1})
    assert client.post(LEADS, json={"caller_id": "bad"}).status_code == 503


def test_drop_without_a_socket_never_counts_as_accepted(client: FlaskClient) -> None:
    client.post("/_sandbox/behaviour", json={"drop_rate": 1})
    assert client.post(LEADS, json=LEAD).status_code >= 500
    stats = client.get("/_sandbox/stats").get_json()
    assert stats["accepted"] == 0 and stats["by_status"] == {"dropped": 1}


def test_timeout_is_recorded_before_the_wait_and_not_accepted(app: Flask, client: FlaskClient) -> None:
    client.post("/_sandbox/behaviour", json={"timeout_rate": 1, "timeout_s": 0})
    assert client.post(LEADS, json=LEAD).status_code == 504
    [record] = client.get("/_sandbox/received").get_json()
    assert record["answer"]["fate"] == "timed_out"
    assert client.get("/_sandbox/stats").get_json()["accepted"] == 0


def test_the_same_seed_gives_the_same_faults() -> None:
    def run(seed: int) -> list[int]:
        app = create_sandbox_app(Behaviour(fail_rate=0.5, rate_429=0.2, seed=seed))
        return statuses(app.test_client(), 30)

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_reseeding_at_runtime_replays(client: FlaskClient) -> None:
    client.post("/_sandbox/behaviour", json={"fail_rate": 0.5, "seed": 4})
    first = statuses(client, 20)
    client.post("/_sandbox/behaviour", json={"seed": 4})
    assert statuses(client, 20) == first


def test_rates_mix_roughly_as_asked(client: FlaskClient) -> None:
    client.post("/_sandbox/behaviour", json={"fail_rate": 0.5})
    results = statuses(client, 400)
    assert 120 < results.count(503) < 280
    assert results.count(201) + results.count(503) == 400


def test_behaviour_can_be_read_and_changed(client: FlaskClient) -> None:
    changed = client.post("/_sandbox/behaviour", json={"delay_ms": 5, "tokens": ["a", "b"]}).get_json()
    assert changed["delay_ms"] == 5 and changed["tokens"] == ["a", "b"]
    assert client.get("/_sandbox/behaviour").get_json() == changed


@pytest.mark.parametrize("body", [
    {"fail_rate": 2}, {"fail_rate": "often"}, {"delay_ms": -1}, {"colour": "red"}, {"tokens": 5},
    {"seed": True},
])
def test_bad_behaviour_is_refused_with_400(client: FlaskClient, body: dict) -> None:
    response = client.post("/_sandbox/behaviour", json=body)
    assert response.status_code == 400
    assert response.get_json()["errors"]


def test_behaviour_must_be_a_json_object(client: FlaskClient) -> None:
    response = client.post("/_sandbox/behaviour", data=b"nope", content_type="application/json")
    assert response.status_code == 400
    assert client.post("/_sandbox/behaviour", json=[1]).status_code == 400
