"""One Settings, read once: every bad value names its variable and the accepted forms."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from relay.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_without_any_variable() -> None:
    settings = Settings.from_env({})
    assert settings.workers == 2 and settings.threads == 16 and settings.delivery_enabled
    assert settings.delivery_evented
    assert settings.retry_delays_s[0] == 1.0 and settings.breaker_failures == 20
    assert settings.trusted_proxies == ("127.0.0.1", "::1")


def test_values_are_read_and_shaped() -> None:
    settings = Settings.from_env({
        "RELAY_WORKERS": "4", "RELAY_DELIVERY": "OFF", "RELAY_RETRY_DELAYS": "1, 2,3",
        "RELAY_SQLITE_SYNCHRONOUS": "normal", "RELAY_TRUSTED_PROXIES": "10.0.0.1, ::1",
        "RELAY_BREAKER_FAILURES": "7", "RELAY_BREAKER_COOLDOWN": "2.5", "RELAY_ACCESS_LOG": "1",
        "TRACKDRIVE_BASE_URL": "https://acme.trackdrive.com/", "RELAY_RATE_LIMIT": "2.5",
        "RELAY_DELIVERY_EVENTED": "off"})
    assert settings.workers == 4 and not settings.delivery_enabled and settings.access_log
    assert not settings.delivery_evented
    assert settings.retry_delays_s == (1.0, 2.0, 3.0) and settings.sqlite_synchronous == "NORMAL"
    assert settings.trusted_proxies == ("10.0.0.1", "::1")
    assert settings.breaker_failures == 7 and settings.breaker_cooldown_s == 2.5
    assert settings.trackdrive_base_url == "https://acme.trackdrive.com"
    assert settings.rate_limit_per_s == 2.5


@pytest.mark.parametrize(("variable", "value", "accepted"), [
    ("RELAY_WORKERS", "two", "a whole number of at least 1"),
    ("RELAY_WORKERS", "0", "a whole number of at least 1"),
    ("RELAY_DELIVERY", "maybe", "1/on/true/yes or 0/false/no/off"),
    ("RELAY_RETRY_DELAYS", "5,soon", "comma-separated seconds"),
    ("RELAY_RETRY_JITTER", "2", "a number from 0 to 1"),
    ("RELAY_LEASE_SECONDS", "0", "a number greater than 0"),
    ("RELAY_RATE_LIMIT", "nan", "a number of at least 0"),
    ("RELAY_SQLITE_SYNCHRONOUS", "fast", "one of FULL, NORMAL, EXTRA"),
    ("RELAY_LOG_LEVEL", "loud", "one of debug, info"),
    ("TRACKDRIVE_BASE_URL", "trackdrive.com", "an http(s) URL"),
])
def test_a_bad_value_names_the_variable_and_the_accepted_forms(variable: str, value: str,
                                                              accepted: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    assert raised.value.variable == variable
    assert f"{variable}={value!r} is not valid: expected {accepted}" in str(raised.value)


def test_a_blank_secret_counts_as_unset() -> None:
    settings = Settings.from_env({"ACME_TOKEN": "   ", "OTHER": "x"})
    assert settings.secret("ACME_TOKEN") is None and settings.secret("OTHER") == "x"


def test_no_module_but_settings_reads_the_environment() -> None:
    found = subprocess.run(["grep", "-rln", "--include=*.py", "-e", "os.environ", "-e", "getenv", "relay"],
                           capture_output=True, text=True, cwd=ROOT).stdout.split()
    # The gunicorn config hands the metrics directory to prometheus_client through the environment.
    assert sorted(found) == ["relay/runtime/gunicorn_conf.py", "relay/settings.py"]


def test_the_cli_stops_on_a_bad_value_with_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "relay", "mappings", "lint"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "RELAY_MAPPINGS_POLL": "often"})
    assert done.returncode == 2
    assert done.stderr.strip() == ("relay: configuration error: RELAY_MAPPINGS_POLL='often' is not valid: "
                                   "expected a number of at least 0")


def test_the_readme_lists_every_variable_the_relay_reads() -> None:
    from relay.settings import variables

    Settings.from_env({})
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in variables() if f"`{name}`" not in readme]
    assert missing == []
