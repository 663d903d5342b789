"""/readyz: the verdict for load balancers, the reasons for admins."""
from __future__ import annotations

from relay.errors import StoreUnavailable
from relay.mapping.model import Problem
from relay.web import relay_state
from tests.ops.conftest import ADMIN_TOKEN, OUTSIDE
from tests.web.web_fakes import ENV

ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


def test_healthz_is_liveness_only(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_anonymous_callers_get_the_verdict_only(anonymous):
    response = anonymous.get("/readyz", environ_base=OUTSIDE)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


def test_admins_get_every_source_and_the_store(app):
    body = app.test_client().get("/readyz", headers={"X-Admin-Token": ADMIN_TOKEN}).get_json()
    assert body["status"] == "ready" and body["draining"] is False
    assert body["store"] == {"writable": True, "error": None}
    assert body["sources"]["acme"] == {"version": "1", "problems": [], "secrets_present": True,
                                       "missing_env": []}


def test_missing_secrets_and_broken_files_are_reported(make_app, acme):
    env = {key: value for key, value in ENV.items() if key != "ACME_LEAD_TOKEN"}
    env["RELAY_ADMIN_TOKEN"] = ADMIN_TOKEN
    problem = Problem(file="mappings/broken.yaml", line=3, column=1, message="lead.caller_id is required",
                      code="required")
    body = make_app(acme, env=env, problems=(problem,)).test_client().get("/readyz", headers=ADMIN).get_json()
    assert body["sources"]["acme"]["secrets_present"] is False
    assert body["sources"]["acme"]["missing_env"] == ["ACME_LEAD_TOKEN"]
    assert body["sources"]["broken"]["version"] is None
    assert body["sources"]["broken"]["problems"][0]["message"] == "lead.caller_id is required"
    assert body["status"] == "ready"  # one broken file must not take every source out of rotation


def test_not_ready_without_any_loaded_mapping(make_app):
    response = make_app().test_client().get("/readyz", environ_base=OUTSIDE)
    assert response.status_code == 503
    assert response.get_json() == {"status": "not_ready"}


def test_not_ready_while_draining(app):
    relay_state(app).draining = True
    response = app.test_client().get("/readyz", headers={"X-Admin-Token": ADMIN_TOKEN})
    assert response.status_code == 503
    assert response.get_json()["draining"] is True


class ReadOnlyStore:
    def __init__(self, store) -> None:
        self.store = store

    def check_writable(self) -> None:
        raise StoreUnavailable("the outbox database is read-only")

    def __getattr__(self, name: str):
        return getattr(self.store, name)


def test_not_ready_when_the_store_cannot_write(make_app, acme, store):
    app = make_app(acme, outbox=ReadOnlyStore(store), env={**ENV, "RELAY_ADMIN_TOKEN": ADMIN_TOKEN})
    response = app.test_client().get("/readyz", headers=ADMIN)
    assert response.status_code == 503
    assert response.get_json()["store"] == {"writable": False, "error": "the outbox database is read-only"}


def test_a_wrong_token_is_refused_not_ignored(token_app):
    client = token_app.test_client()
    assert client.get("/readyz", headers={"X-Admin-Token": "nope"}).status_code == 401
    assert client.get("/readyz").get_json() == {"status": "ready"}  # loopback, but a token is configured
    detailed = client.get("/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).get_json()
    assert "acme" in detailed["sources"]
