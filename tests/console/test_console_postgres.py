"""The console's pages over a PostgreSQL outbox: the same answers as over SQLite."""
from __future__ import annotations

import csv
import io
from typing import Iterator

import pytest

from relay.store import open_store
from relay.store.base import Store
from tests.console.conftest import TOKENS, csrf_of, log_in
from tests.support import postgres


@pytest.fixture
def pg_store() -> Iterator[Store]:
    postgres.require_postgres()
    schema = postgres.new_schema_name("console")
    store = open_store(postgres.schema_url(schema))
    try:
        yield store
    finally:
        store.close()
        postgres.drop_schema(schema)


def test_every_page_answers_over_postgres(make_app, acme, pg_store: Store) -> None:
    client = make_app(acme, env=TOKENS, outbox=pg_store).test_client()
    for phone in ("+15125550147", "+15125550148", ""):
        assert client.post("/hooks/acme", json={"phone": phone}).status_code in (202, 422)
    log_in(client)
    assert "✓ OK" in client.get("/admin/").get_data(as_text=True)
    found = client.get("/admin/leads?q=512.555.0147").get_data(as_text=True)
    assert found.count('class="lead-link"') == 1
    lead_id = found.split('class="lead-link" href="/admin/leads/')[1].split('"')[0]
    page = client.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    assert "***47" in page
    rows = list(csv.DictReader(io.StringIO(client.get("/admin/reconciliation.csv?tz=Asia/Kolkata")
                                           .get_data(as_text=True))))
    assert (rows[-1]["received"], rows[-1]["refused"]) == ("3", "1")
    confirm = client.get(f"/admin/actions/purge?id={lead_id}").get_data(as_text=True)
    assert client.post("/admin/actions/purge", data={"id": lead_id, "csrf_token": csrf_of(confirm)}).status_code == 200
    assert pg_store.get(lead_id) is None and pg_store.audit_log()[0].action == "purge"
    assert "purge" in client.get("/admin/audit").get_data(as_text=True)
