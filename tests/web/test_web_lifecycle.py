"""Delivery start/stop inside a process, and how ``relay serve`` builds its gunicorn command."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from relay.cli import serve
from relay.runtime.delivery import start_delivery, stop_delivery
from relay.web import relay_state


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
    monkeypatch.delenv("RELAY_GUNICORN_CONF", raising=False)
    argv = serve.gunicorn_argv(argparse.Namespace(bind="127.0.0.1:9999", workers=3))
    config = argv[argv.index("-c") + 1]
    assert Path(config).name == "gunicorn.conf.py"
    assert argv[-4:] == ["--bind", "127.0.0.1:9999", "--workers", "3"]


def test_serve_config_can_be_chosen_by_env(monkeypatch):
    monkeypatch.setenv("RELAY_GUNICORN_CONF", "/etc/relay/gunicorn.conf.py")
    assert serve.config_location() == "/etc/relay/gunicorn.conf.py"


PROBE_CONF = """
import sys
import relay.runtime.gunicorn_conf as conf
assert conf.wsgi_app == "relay.web:create_app()"
assert conf.worker_class == "relay.runtime.prereader.PrereadingWorker"
assert callable(conf.post_worker_init) and callable(conf.worker_exit)
assert conf.workers == 3 and conf.threads == 4
# The master must not build the app: no Flask, no store, no delivery code imported.
heavy = sorted(name for name in ("flask", "relay.web", "relay.store.sqlite", "relay.delivery") if name in sys.modules)
print(",".join(heavy))
"""


def test_packaged_gunicorn_settings_load_without_the_app_stack():
    # A fresh interpreter: importing the config sets the metrics directory for its process.
    env = {**os.environ, "RELAY_WORKERS": "3", "RELAY_THREADS": "4"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    done = subprocess.run([sys.executable, "-c", PROBE_CONF], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_a_bad_setting_stops_the_start_naming_the_variable():
    env = {**os.environ, "RELAY_WORKERS": "two"}
    done = subprocess.run([sys.executable, "-c", "import relay.runtime.gunicorn_conf"], capture_output=True,
                          text=True, env=env)
    assert done.returncode == 2
    assert "RELAY_WORKERS='two' is not valid: expected a whole number of at least 1" in done.stderr
    assert "Traceback" not in done.stderr


PROBE_WORKER = """
import sys, tempfile
from relay.runtime.delivery import build_dispatcher
from relay.settings import Settings
from relay.web import create_app, relay_state
workdir = tempfile.mkdtemp()
app = create_app(Settings(database_url=f"sqlite:///{workdir}/relay.db", mappings_dir=sys.argv[1],
                          delivery_enabled=False))
build_dispatcher(relay_state(app))
print(",".join(name for name in ("requests", "psycopg") if name in sys.modules))
"""


def test_a_worker_on_sqlite_loads_neither_requests_nor_psycopg_until_it_needs_them():
    # About 4 MiB (requests, taken by the fetch stage on its first fetch) and 12 MiB (psycopg,
    # for a PostgreSQL outbox) per worker; the shipped mappings include a fetching source.
    mappings = Path(__file__).resolve().parents[2] / "mappings"
    done = subprocess.run([sys.executable, "-c", PROBE_WORKER, str(mappings)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
