"""One request, several leads, through real gunicorn, real HTTP, SQLite and the sandbox."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
import requests

from relay.store import open_store
from tests.intake.batch_mappings import BATCHY, CRASHY, SECRETS, YML
from tests.support.procs import ROOT
from tests.support.stack import Stack, wait_until

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("intake")
    running = Stack(workdir, env_overrides={**SECRETS, "RELAY_GUNICORN_CONF": str(HERE / "crash_gunicorn_conf.py"),
                                            "PYTHONPATH": str(ROOT)})
    import shutil
    shutil.copytree(ROOT / "mappings", running.mappings_dir)
    (running.mappings_dir / "batchy.yaml").write_text(BATCHY)
    (running.mappings_dir / "yml-vendor.yml").write_text(YML)
    (running.mappings_dir / "crashy.yaml").write_text(CRASHY)
    running.start()
    yield running
    running.stop()


def batch(*leads: dict[str, str]) -> bytes:
    return json.dumps({"leads": list(leads)}).encode()


def test_a_batch_becomes_one_lead_each_delivered_on_its_own(stack: Stack) -> None:
    body = batch({"id": "b1", "phone": "(512) 555-0147", "first_name": "Ana"},
                 {"id": "b2", "phone": "not a phone"},
                 {"id": "b3", "phone": "+1 512 555 0148", "first_name": "Bo"})
    response = requests.post(f"{stack.url}/hooks/batchy", data=body,
                             headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "accepted" and answer["count"] == 3
    assert [lead["status"] for lead in answer["leads"]] == ["queued", "rejected", "queued"]
    assert answer["leads"][1]["error"]["rule"] == "phone"
    ids = [lead["lead_id"] for lead in answer["leads"]]
    assert len(set(ids)) == 3 and answer["batch_id"] == ids[0]

    def delivered() -> list[dict]:
        return [call for call in stack.received() if call["params"].get("data", {}).get("first_name") in ("Ana", "Bo")]
    calls = wait_until(lambda: len(delivered()) == 2 and delivered())
    assert sorted(call["params"]["caller_id"] for call in calls) == ["+15125550147", "+15125550148"]
    store = open_store(stack.database_url)
    try:
        leads = store.list(batch_id=ids[0])
        assert sorted((lead.batch_index, lead.batch_size) for lead in leads) == [(0, 3), (1, 3), (2, 3)]
    finally:
        store.close()

    repeat = requests.post(f"{stack.url}/hooks/batchy", data=body,
                           headers={"Content-Type": "application/json"}, timeout=10).json()
    # The taken leads are duplicates of the first ones; the refused one is refused again, not blocked.
    assert [lead.get("duplicate", False) for lead in repeat["leads"]] == [True, False, True]
    assert repeat["leads"][0]["lead_id"] == ids[0] and repeat["leads"][1]["lead_id"] != ids[1]


def test_a_batch_whose_split_path_matches_nothing_is_kept_as_refused(stack: Stack) -> None:
    response = requests.post(f"{stack.url}/hooks/batchy", json={"items": []}, timeout=10)
    assert response.status_code == 422
    [lead] = response.json()["leads"]
    assert lead["status"] == "rejected" and lead["error"]["rule"] == "no_leads"


def test_a_yml_file_is_served_like_yaml(stack: Stack) -> None:
    response = requests.post(f"{stack.url}/hooks/yml-vendor", json={"phone": "5125550149"}, timeout=10)
    assert response.status_code == 202, response.text


def test_a_mapping_crash_is_logged_with_its_traceback_counted_and_kept(stack: Stack) -> None:
    response = requests.post(f"{stack.url}/hooks/crashy", json={"phone": "5125550150"}, timeout=10)
    assert response.status_code == 422
    answer = response.json()
    assert answer["kept"] is True and answer["error"]["rule"] == "mapping_error"
    lead_id = answer["lead_id"]

    def crash_line() -> dict | None:
        for line in stack.relay.log().splitlines() if stack.relay else []:
            if '"mapping_crash"' in line and lead_id in line:
                return json.loads(line)
        return None
    line = wait_until(crash_line)
    assert line and line["level"] == "error" and "ZeroDivisionError: planted defect" in line["exc"]
    metrics = requests.get(f"{stack.url}/metrics", headers=stack.admin_headers, timeout=10).text
    assert 'relay_mapping_crashes_total{source="crashy"} 1.0' in metrics
    store = open_store(stack.database_url)
    try:
        lead = store.get(lead_id)
        assert lead is not None and lead.status == "rejected" and lead.error["rule"] == "mapping_error"
    finally:
        store.close()
