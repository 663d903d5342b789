"""Live reload through a real gunicorn with several workers, while requests keep coming."""
from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.reload.live import PHONE, Stream, all_answer, post, start_stack
from tests.reload.mappings_fixture import BETA, BROKEN, TEL_ONLY, V1, V2, configmap_layout, save_by_rename, write
from tests.support.stack import Stack, wait_until


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    running = start_stack(tmp_path)
    yield running
    running.stop()


def hook(stack: Stack, source: str = "acme") -> str:
    return f"{stack.url}/hooks/{source}"


def test_edit_reaches_every_worker_with_no_failed_request(stack: Stack):
    url = hook(stack)
    assert post(url, TEL_ONLY).status_code == 422  # v1 does not read "tel"
    with Stream(url, TEL_ONLY) as stream:
        wait_until(lambda: len(stream.answers) >= 5)
        write(stack.mappings_dir / "acme.yaml", V2)
        assert wait_until(lambda: all_answer(url, TEL_ONLY, 202)), stack.logs()
        wait_until(lambda: stream.answers and stream.answers[-1][1] == 202)
    assert stream.statuses() <= {202, 422}, stream.answers
    assert {202, 422} <= stream.statuses()


def test_broken_edit_keeps_the_last_good_version_and_shows_in_readyz(stack: Stack):
    url = hook(stack)
    with Stream(url, PHONE) as stream:
        save_by_rename(stack.mappings_dir / "acme.yaml", BROKEN)
        assert wait_until(lambda: all(readyz_problems(stack, "acme") for _ in range(12))), stack.logs()
        assert all_answer(url, TEL_ONLY, 422)  # still v1
    assert stream.statuses() == {202}, stream.answers
    assert "mapping_reload_error" in stack.relay.log()
    ready = requests.get(f"{stack.url}/readyz", timeout=10)
    assert ready.status_code == 200  # the source still serves

    save_by_rename(stack.mappings_dir / "acme.yaml", V2)
    assert wait_until(lambda: all_answer(url, TEL_ONLY, 202)), stack.logs()
    assert wait_until(lambda: not any(readyz_problems(stack, "acme") for _ in range(12)))


def readyz_problems(stack: Stack, name: str) -> list:
    body = requests.get(f"{stack.url}/readyz", headers=stack.admin_headers, timeout=10).json()
    return body["sources"].get(name, {}).get("problems", [])


def test_rename_save_is_seen(stack: Stack):
    url = hook(stack)
    save_by_rename(stack.mappings_dir / "acme.yaml", V2)
    assert wait_until(lambda: all_answer(url, TEL_ONLY, 202)), stack.logs()


def test_add_and_remove_a_source(stack: Stack):
    url = hook(stack, "beta")
    assert post(url, PHONE).status_code == 404
    write(stack.mappings_dir / "beta.yaml", BETA)
    assert wait_until(lambda: all_answer(url, PHONE, 202)), stack.logs()
    (stack.mappings_dir / "beta.yaml").unlink()
    assert wait_until(lambda: all_answer(url, PHONE, 404)), stack.logs()
    assert post(hook(stack), PHONE).status_code == 202


def test_configmap_symlink_swap(tmp_path: Path):
    stack = start_stack(tmp_path, files={},
                        layout=lambda directory: configmap_layout(directory, {"acme.yaml": V1}, "gen1"))
    try:
        url = hook(stack)
        assert post(url, TEL_ONLY).status_code == 422
        configmap_layout(stack.mappings_dir, {"acme.yaml": V2}, "gen2")
        assert wait_until(lambda: all_answer(url, TEL_ONLY, 202)), stack.logs()
    finally:
        stack.stop()


def test_sighup_to_the_master_restarts_workers_with_the_new_mappings(tmp_path: Path):
    stack = start_stack(tmp_path, RELAY_MAPPINGS_POLL="0")  # no polling: only the HUP can reload
    try:
        url = hook(stack)
        with Stream(url, PHONE) as stream:
            write(stack.mappings_dir / "acme.yaml", V2)
            assert post(url, TEL_ONLY).status_code == 422
            os.kill(stack.relay.popen.pid, signal.SIGHUP)
            assert wait_until(lambda: all_answer(url, TEL_ONLY, 202)), stack.logs()
        assert stream.statuses() == {202}, stream.answers
    finally:
        stack.stop()


def test_sighup_to_each_worker_reloads_in_place(tmp_path: Path):
    stack = start_stack(tmp_path, RELAY_MAPPINGS_POLL="0")
    try:
        url = hook(stack)
        write(stack.mappings_dir / "acme.yaml", V2)
        assert post(url, TEL_ONLY).status_code == 422
        workers = [int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", stack.relay.log())]
        for pid in workers:
            os.kill(pid, signal.SIGHUP)
        assert wait_until(lambda: all_answer(url, TEL_ONLY, 202)), stack.logs()
        assert stack.relay.log().count("Booting worker") == len(workers)  # reloaded in place
    finally:
        stack.stop()
