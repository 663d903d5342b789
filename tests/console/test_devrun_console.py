"""`make run` turns the console on with a demo token and prints where to log in."""
from __future__ import annotations

import pytest

from relay.devrun import console_access
from relay.settings import Settings


def test_a_demo_token_is_made_and_printed_with_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    env = console_access(Settings.from_env({"RELAY_BIND": "0.0.0.0:9090"}))
    token = env["RELAY_ADMIN_TOKEN"]
    assert token.startswith("demo-") and len(token) > 12
    printed = capsys.readouterr().out
    assert "http://127.0.0.1:9090/admin/login" in printed and token in printed


def test_a_token_already_set_is_kept_and_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert console_access(Settings.from_env({"RELAY_ADMIN_TOKEN": "mine-0123456789"})) == {}
    printed = capsys.readouterr().out
    assert "/admin/login" in printed and "mine-0123456789" not in printed
