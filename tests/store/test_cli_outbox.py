"""``relay outbox``, run in-process against a temporary SQLite outbox (and once as a real process)."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

import relay.cli.outbox as outbox_cli
from relay.cli import main
from relay.errors import MalformedBody
from relay.mapping.model import Drop, InboundRequest, InboundSettings, Refusal, TrackdriveCall
from relay.store import open_store
from relay.store.base import Lead, Received, Settlement, Store

DAY = 86_400.0
NOW = time.time()
CALL = {"action": "create_lead", "method": "POST", "path": "/api/v1/leads",
        "query": {"lead_token": "${ACME_LEAD_TOKEN}"}, "body": {"caller_id": "+15555550100"},
        "base_url": None, "secrets": {"lead_token": "ACME_LEAD_TOKEN"}, "route": None}


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'relay.db'}"


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    opened = open_store(url)
    yield opened
    opened.close()


@pytest.fixture(autouse=True)
def no_mappings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_MAPPINGS_DIR", str(tmp_path / "no-mappings"))


def add(store: Store, **overrides: Any) -> Lead:
    values: dict[str, Any] = dict(
        source="acme", received_at=NOW - 60, method="POST", content_type="application/json",
        query="", headers={"User-Agent": "acme"}, body=b'{"phone": "5555550100"}',
        client_addr="203.0.113.7", status="queued", call=CALL)
    values.update(overrides)
    return store.insert(Received(**values))[0]


def dead(store: Store, **overrides: Any) -> Lead:
    lead = add(store, **overrides)
    store.claim(lead.id, "w1", 60, lead.received_at)
    store.settle(lead.id, "w1", Settlement("dead", at=lead.received_at + 1, response_status=422,
                                           response_body='{"errors":["dnc"]}', reason="rejected"))
    return lead


def run(url: str, *argv: str) -> int:
    return main(["outbox", *argv, "--database-url", url])


def json_out(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


# --- list, show, counts, report ---

def test_report_by_day_counts_every_outcome_and_duplicates(store: Store, url: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    first = add(store, dedupe_key="evt-1", dedupe_window_s=DAY)
    assert add(store, dedupe_key="evt-1", dedupe_window_s=DAY).id == first.id  # a repeat: counted, not stored
    add(store)
    add(store, status="rejected", call=None, error={"code": "lead_refused"})
    add(store, status="dropped", call=None, error={"reason": "test lead"})
    dead(store)
    assert run(url, "report", "--by", "day", "--tz", "America/Chicago", "--csv") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "day,source,received,accepted,refused,dropped,duplicates,delivered,dead,pending,time_zone"
    total = lines[-1].split(",")
    assert total[:2] == ["total", "total"]
    # 5 stored + 1 duplicate; accepted: 2 queued + 1 dead
    assert [int(value) for value in total[2:10]] == [6, 3, 1, 1, 1, 0, 1, 2]
    assert total[10] == "America/Chicago"
    assert run(url, "report", "--tz", "Mars/Base") == 2


def test_list_table_and_filters(store: Store, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    first = add(store)
    other = add(store, source="globex", received_at=NOW - 30)
    assert run(url, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "RECEIVED", "SOURCE", "STATUS", "ATTEMPTS", "HTTP"]
    assert [line.split()[0] for line in lines[1:]] == [other.id, first.id]
    assert run(url, "list", "--source", "acme", "--json") == 0
    assert [row["id"] for row in json_out(capsys)] == [first.id]
    assert run(url, "list", "--status", "dead", "--json") == 0
    assert json_out(capsys) == []


def test_database_url_may_come_before_the_subcommand_or_from_env(
        store: Store, url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    lead = add(store)
    assert main(["outbox", "--database-url", url, "list", "--json"]) == 0
    assert [row["id"] for row in json_out(capsys)] == [lead.id]
    monkeypatch.setenv("RELAY_DATABASE_URL", url)
    assert main(["outbox", "list", "--json"]) == 0
    assert [row["id"] for row in json_out(capsys)] == [lead.id]


def test_show_prints_lead_masked_call_and_attempts(store: Store, url: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    leaky = dict(CALL, query={"lead_token": "real-secret-value"})
    lead = dead(store, call=leaky)
    assert run(url, "show", lead.id) == 0
    shown = json_out(capsys)
    assert (shown["id"], shown["status"], shown["body_encoding"]) == (lead.id, "dead", "utf-8")
    assert shown["body"] == '{"phone": "***00"}'
    assert shown["call"]["query"]["lead_token"] == "***"
    assert [a["result"] for a in shown["attempt_log"]] == ["dead"]
    assert shown["attempt_log"][0]["response_status"] == 422
    assert "real-secret-value" not in json.dumps(shown)


def test_show_binary_body_as_base64(store: Store, url: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    body = b"\xff\xfe\x00binary"
    lead = add(store, body=body, content_type="application/octet-stream")
    assert run(url, "show", lead.id, "--reveal") == 0
    shown = json_out(capsys)
    assert shown["body_encoding"] == "base64"
    assert base64.b64decode(shown["body"]) == body


PERSONAL_BODY = json.dumps({"first_name": "José", "last_name": "Núñez", "address": "1 Main St",
                            "phone": "+44 20 7946 0958", "email": "josé@exämple.com"}).encode()
PERSONAL = ("José", "Núñez", "Main St", "7946", "josé@", "jos\\u00e9")


def personal_lead(store: Store) -> Lead:
    call = dict(CALL, body={"caller_id": "+4402079460958", "first_name": "José", "email": "josé@exämple.com"})
    lead = add(store, body=PERSONAL_BODY, query="first_name=Jos%C3%A9&address=1+Main+St&phone=%2B442079460958",
               headers={"User-Agent": "acme", "X-Contact": "josé@exämple.com"}, call=call)
    store.claim(lead.id, "w1", 60, lead.received_at)
    store.settle(lead.id, "w1", Settlement("dead", at=lead.received_at + 1, response_status=422,
                                           response_body='{"errors":["+44 20 7946 0958 is on the DNC list"]}',
                                           reason="rejected"))
    return lead


def test_show_masks_personal_data_everywhere(store: Store, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    lead = personal_lead(store)
    assert run(url, "show", lead.id) == 0
    captured = capsys.readouterr()
    shown = json.loads(captured.out)
    leaked = [value for value in PERSONAL if value in captured.out]
    assert not leaked, captured.out
    assert json.loads(shown["body"]) == {"first_name": "J***", "last_name": "N***", "address": "1***",
                                         "phone": "***58", "email": "j***@exämple.com"}
    assert shown["query"] == "first_name=J***&address=1***&phone=***58"
    assert shown["call"]["body"] == {"caller_id": "***58", "first_name": "J***", "email": "j***@exämple.com"}
    assert shown["headers"]["X-Contact"] == "j***@exämple.com"
    assert "pii_revealed" not in captured.err


def test_show_reveal_prints_raw_and_logs_who_revealed(store: Store, url: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    lead = personal_lead(store)
    assert run(url, "show", lead.id, "--reveal") == 0
    captured = capsys.readouterr()
    shown = json.loads(captured.out)
    assert shown["body"] == PERSONAL_BODY.decode()
    assert shown["call"]["body"]["first_name"] == "José"
    assert shown["call"]["query"]["lead_token"] == "${ACME_LEAD_TOKEN}"  # secrets are not personal data
    [line] = [json.loads(line) for line in captured.err.splitlines() if "pii_revealed" in line]
    assert (line["event"], line["lead_id"], line["logger"]) == ("pii_revealed", lead.id, "relay.audit")
    assert line["os_user"] == outbox_cli.os_user() and line["os_user"]


def test_show_unknown_id_fails(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(url, "show", "01NOSUCHLEAD0000000000000") == 1
    assert "no lead with id" in capsys.readouterr().err


def test_counts_by_day_with_inclusive_range(store: Store, url: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    day1 = 1_700_006_400.0  # 2023-11-15 00:00:00 UTC
    add(store, received_at=day1 + 10)
    add(store, received_at=day1 + DAY - 1)
    add(store, received_at=day1 + DAY, source="globex")
    assert run(url, "counts", "--since", "2023-11-15", "--until", "2023-11-15", "--json") == 0
    assert json_out(capsys) == [{"day": "2023-11-15", "source": "acme", "status": "queued",
                                 "count": 2}]
    assert run(url, "counts") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["DAY", "SOURCE", "STATUS", "COUNT"]
    assert [line.split() for line in lines[1:]] == [["2023-11-15", "acme", "queued", "2"],
                                                    ["2023-11-16", "globex", "queued", "1"]]


def test_bad_date_is_a_usage_error(url: str) -> None:
    with pytest.raises(SystemExit) as exited:
        run(url, "counts", "--since", "15/11/2023")
    assert exited.value.code == 2


# --- retry, purge ---

def test_retry_requeues_dead_letters(store: Store, url: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    one, two = dead(store), dead(store)
    other = dead(store, source="globex")
    assert run(url, "retry") == 2
    assert run(url, "retry", one.id) == 0
    assert "requeued 1 dead lead(s) of 1 given" in capsys.readouterr().out
    assert run(url, "retry", "--source", "globex") == 0
    assert store.get(other.id).status == "queued"  # type: ignore[union-attr]
    assert store.get(two.id).status == "dead"  # type: ignore[union-attr]
    assert run(url, "retry", "--all-dead") == 0
    assert store.get(two.id).status == "queued"  # type: ignore[union-attr]
    assert len(store.attempts(two.id)) == 1


def test_purge_deletes_old_delivered_leads(store: Store, url: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    old = add(store, received_at=NOW - 40 * DAY)
    store.claim(old.id, "w1", 60, old.received_at)
    store.settle(old.id, "w1", Settlement("delivered", at=old.received_at + 1))
    old_dead = dead(store, received_at=NOW - 40 * DAY)
    recent = add(store)
    assert run(url, "purge", "--older-than", "30d") == 0
    assert "purged 1 lead(s)" in capsys.readouterr().out
    assert store.get(old.id) is None
    assert store.get(old_dead.id) is not None and store.get(recent.id) is not None
    assert run(url, "purge", "--older-than", "4w", "--status", "dead") == 0
    assert store.get(old_dead.id) is None


def test_purge_needs_a_readable_age(url: str) -> None:
    with pytest.raises(SystemExit):
        run(url, "purge", "--older-than", "a month")


# --- replay ---

@dataclass
class FakeSource:
    """Maps by the body's ``kind``: call, refuse, drop or broken."""

    version: str = "v2"
    name: str = "acme"
    split: Any = None
    fetch: Any = None
    idempotency: Any = None
    inbound: InboundSettings = field(default_factory=InboundSettings)

    def parse(self, request: InboundRequest) -> Any:
        kind = json.loads(request.body or b"{}").get("kind", "call")
        if kind == "broken":
            raise MalformedBody("the body is not JSON")
        return {"kind": kind}

    def split_leads(self, payload: Any) -> list[Any]:
        return [payload]

    def map_payload(self, payload: Any) -> Any:
        kind = payload["kind"]
        if kind == "refuse":
            return Refusal("acme", "caller_id", "phone", "caller_id is not a phone", ("$.phone",))
        if kind == "drop":
            return Drop("acme", "test lead")
        return TrackdriveCall.from_dict(CALL)


@pytest.fixture
def fake_mappings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_cli, "load_sources", lambda directory: {"acme": FakeSource()})


def rejected(store: Store, kind: str, **overrides: Any) -> Lead:
    return add(store, status="rejected", call=None, error={"code": "lead_refused"},
               body=json.dumps({"kind": kind}).encode(), **overrides)


def test_replay_remaps_with_the_current_mapping(store: Store, url: str, fake_mappings: None,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    fixed = rejected(store, "call")
    still = rejected(store, "refuse")
    dropped = rejected(store, "drop")
    broken = rejected(store, "broken")
    assert run(url, "replay", "--status", "rejected") == 0
    assert f"{fixed.id}: rejected -> queued (create_lead)" in capsys.readouterr().out
    after = {lead.id: store.get(lead.id) for lead in (fixed, still, dropped, broken)}
    assert after[fixed.id].status == "queued" and after[fixed.id].call == CALL  # type: ignore
    assert after[fixed.id].mapping_version == "v2"  # type: ignore[union-attr]
    assert after[still.id].status == "rejected"  # type: ignore[union-attr]
    assert after[still.id].error["rule"] == "phone"  # type: ignore[index,union-attr]
    assert after[dropped.id].status == "dropped"  # type: ignore[union-attr]
    assert after[broken.id].error["rule"] == "malformed_body"  # type: ignore[index,union-attr]


def test_replay_dry_run_changes_nothing(store: Store, url: str, fake_mappings: None,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    lead = rejected(store, "call")
    assert run(url, "replay", lead.id, "--dry-run") == 0
    assert "rejected -> queued (create_lead) [dry run]" in capsys.readouterr().out
    assert store.get(lead.id) == lead


def test_replay_by_id_source_and_dead_status(store: Store, url: str, fake_mappings: None,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    letter = dead(store)
    unknown = dead(store, source="globex")
    assert run(url, "replay", "--status", "dead", "--source", "acme") == 0
    assert store.get(letter.id).status == "queued"  # type: ignore[union-attr]
    assert run(url, "replay", unknown.id, "01NOSUCHLEAD0000000000000") == 1
    out = capsys.readouterr().out
    assert "no mapping for source 'globex'" in out and "no such lead" in out
    assert store.get(unknown.id).status == "dead"  # type: ignore[union-attr]


def test_replay_needs_a_selection(url: str) -> None:
    assert run(url, "replay") == 2
    assert run(url, "retry") == 2


# --- failures and a real process ---

def test_unknown_database_scheme_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["outbox", "list", "--database-url", "mysql://db/relay"]) == 1
    assert "unknown database URL scheme" in capsys.readouterr().err


def test_runs_as_a_real_process(store: Store, url: str, tmp_path: Path) -> None:
    lead = dead(store)
    env = {**os.environ, "RELAY_DATABASE_URL": url}
    done = subprocess.run([sys.executable, "-m", "relay", "outbox", "retry", "--all-dead"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "requeued 1 dead lead(s)" in done.stdout
    assert store.get(lead.id).status == "queued"  # type: ignore[union-attr]


REAL_MAPPING = """\
version: 1
trackdrive:
  lead_token: ${ACME_LEAD_TOKEN}
lead:
  caller_id: {path: $.phone, transform: phone, required: true}
inbound:
  auth:
    token: {query: api_key, secret: "${ACME_API_KEY}"}
"""


@pytest.fixture
def real_mappings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "mappings"
    directory.mkdir()
    (directory / "acme.yaml").write_text(REAL_MAPPING)
    monkeypatch.setenv("RELAY_MAPPINGS_DIR", str(directory))
    return directory


def test_replay_with_a_real_mapping_directory(store: Store, url: str, real_mappings: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    fixed = add(store, status="rejected", call=None, error={"code": "lead_refused"},
                body=b'{"phone": "(512) 555-0147"}')
    empty = add(store, status="rejected", call=None, error={"code": "lead_refused"}, body=b"{}")
    assert run(url, "replay", "--status", "rejected") == 0
    queued = store.get(fixed.id)
    assert queued is not None and queued.status == "queued"
    assert queued.call["body"]["caller_id"] == "+15125550147"  # type: ignore[index]
    assert queued.mapping_version and queued.mapping_version != fixed.mapping_version
    refused = store.get(empty.id)
    assert refused is not None and refused.status == "rejected"
    assert (refused.error["field"], refused.error["rule"]) == ("caller_id", "required")  # type: ignore[index]


def test_show_masks_the_sources_query_token(store: Store, url: str, real_mappings: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    lead = add(store, query="api_key=vendor-secret&sub=7")
    assert run(url, "show", lead.id) == 0
    shown = json_out(capsys)
    assert shown["query"] == "api_key=***&sub=7"
    assert "vendor-secret" not in json.dumps(shown)
