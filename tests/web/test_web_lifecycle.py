"""Delivery start/stop inside a process, and how ``relay serve`` builds its gunicorn command."""
from __future__ import annotations

import argparse
from pathlib import Path

from relay.cli import serve
from relay.web import relay_state, start_delivery, stop_delivery


def test_start_and_stop_delivery_use_the_given_dispatcher(app, dispatcher):
    assert start_delivery(app) is dispatcher
    assert dispatcher.started
    start_delivery(app)  # a second start is harmless
    stop_delivery(app, timeout_s=1)
    assert dispatcher.stopped
    assert relay_state(app).delivery_started is False


def test_no_dispatcher_is_built_when_delivery_is_off(make_app, acme):
    app = make_app(acme, delivery=None)
    relay_state(app).dispatcher = None
    assert start_delivery(app) is None


def test_lead_stays_queued_without_a_dispatcher(make_app, acme, store):
    app = make_app(acme)
    relay_state(app).dispatcher = None
    response = app.test_client().post("/hooks/acme", json={"phone": "1"})
    assert response.status_code == 202
    assert store.get(response.get_json()["lead_id"]).status == "queued"


def test_serve_uses_the_project_config_and_passes_overrides(monkeypatch):
    monkeypatch.delenv(serve.CONFIG_ENV, raising=False)
    argv = serve.gunicorn_argv(argparse.Namespace(bind="127.0.0.1:9999", workers=3))
    config = argv[argv.index("-c") + 1]
    assert Path(config).name == "gunicorn.conf.py"
    assert argv[-4:] == ["--bind", "127.0.0.1:9999", "--workers", "3"]


def test_serve_config_can_be_chosen_by_env(monkeypatch):
    monkeypatch.setenv(serve.CONFIG_ENV, "/etc/relay/gunicorn.conf.py")
    assert serve.config_location() == "/etc/relay/gunicorn.conf.py"


def test_packaged_gunicorn_settings():
    from relay.web import gunicorn_conf

    assert gunicorn_conf.wsgi_app == "relay.web:create_app()"
    assert gunicorn_conf.worker_class == "gthread"
    assert callable(gunicorn_conf.post_worker_init) and callable(gunicorn_conf.worker_exit)
