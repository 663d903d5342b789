from __future__ import annotations

from flask.testing import FlaskClient

LEADS = "/api/v1/leads"


def send(client: FlaskClient, lead_id: str = "L1", **body: object):
    return client.post(f"{LEADS}?lead_token=secret-token", json={"caller_id": "+15551234567", **body},
                       headers={"X-Relay-Lead-Id": lead_id, "Authorization": "Basic abc"})


def test_received_calls_are_recorded_with_secrets_masked(client: FlaskClient) -> None:
    send(client, lead_token="body-secret")
    [record] = client.get("/_sandbox/received").get_json()
    assert record["seq"] == 1
    assert (record["method"], record["path"]) == ("POST", LEADS)
    assert record["query"] == {"lead_token": "***"}
    assert record["body"]["lead_token"] == "***"
    assert record["lead_id"] == "L1"
    assert "Authorization" not in record["headers"]
    assert record["answer"]["status"] == 201 and record["answer"]["fate"] == "accepted"
    assert record["answer"]["body"]["success"] is True
    assert "secret-token" not in str(record) and "body-secret" not in str(record)


def test_received_pages_with_since(client: FlaskClient) -> None:
    for n in range(5):
        send(client, f"L{n}")
    page = client.get("/_sandbox/received?since=3").get_json()
    assert [r["lead_id"] for r in page] == ["L3", "L4"]
    assert client.get("/_sandbox/received?since=x").status_code == 400


def test_stats_count_statuses_and_duplicate_acceptances(client: FlaskClient) -> None:
    send(client, "L1")
    send(client, "L1")
    send(client, "L2")
    send(client, "L3", caller_id="bad")
    stats = client.get("/_sandbox/stats").get_json()
    assert stats["received"] == 4
    assert stats["accepted"] == 3
    assert stats["by_status"] == {"201": 3, "422": 1}
    assert stats["duplicates_accepted"] == 1


def test_delete_clears_the_record(client: FlaskClient) -> None:
    send(client)
    assert client.delete("/_sandbox/received").status_code == 200
    assert client.get("/_sandbox/received").get_json() == []
    assert client.get("/_sandbox/stats").get_json()["received"] == 0


def test_a_repeated_idempotency_key_is_answered_like_the_first_and_not_accepted_again(
        client: FlaskClient) -> None:
    def once() -> object:
        return client.post(f"{LEADS}?lead_token=t0ken-123", json={"caller_id": "+15551234567"},
                           headers={"X-Relay-Lead-Id": "L7", "Idempotency-Key": "L7"})

    first, repeat = once(), once()
    assert (first.status_code, repeat.status_code) == (201, 200)
    assert repeat.get_json()["lead"]["id"] == first.get_json()["lead"]["id"]
    stats = client.get("/_sandbox/stats").get_json()
    assert (stats["accepted"], stats["replayed"], stats["duplicates_accepted"]) == (1, 1, 0)
