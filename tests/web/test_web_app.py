"""The app shell: health, JSON errors for routing failures, request ids."""
from __future__ import annotations

from relay.web.request_id import choose_request_id


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_unknown_route_is_json_404(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_wrong_method_is_json_405_with_allow(client):
    response = client.delete("/hooks/acme")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_head_on_hooks_is_refused_not_stored(client, store):
    response = client.head("/hooks/acme")
    assert response.status_code == 405
    assert store.list() == []


def test_request_id_is_echoed_when_sane(client):
    response = client.get("/healthz", headers={"X-Request-ID": "vendor-123.abc"})
    assert response.headers["X-Request-ID"] == "vendor-123.abc"


def test_request_id_is_generated_on_errors_too(client):
    response = client.get("/nowhere", headers={"X-Request-ID": "bad id\twith spaces"})
    generated = response.headers["X-Request-ID"]
    assert generated and generated != "bad id\twith spaces"


def test_choose_request_id_rejects_long_values():
    assert choose_request_id("x" * 200) != "x" * 200


def test_unexpected_exception_is_json_500(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("bug")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal_error"
    assert "bug" not in response.get_data(as_text=True)
