"""Bad requests over real HTTP get a clear 4xx JSON error, never a 500; a store that cannot write gets 503."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.support.stack import SHIPPED_MAPPINGS, Stack

GOOD_LEAD = {"lead_id": "bad-input-1", "contact": {"phone": "(512) 201-0001", "first_name": "Ada"}}
JSON = {"Content-Type": "application/json", "X-Api-Key": "example-key"}

EXTRA_SOURCES = {
    # References a secret the environment lacks: must fail closed.
    "needs-secret.yaml": 'version: 1\ntrackdrive: {lead_token: "${NOT_SET_ANYWHERE_TOKEN}"}\n'
                         "lead: {caller_id: $.phone}\n",
    # Only a network the test client is not on may post.
    "private-net.yaml": 'version: 1\ntrackdrive: {lead_token: "${GENERIC_JSON_LEAD_TOKEN}"}\n'
                        "lead: {caller_id: $.phone}\ninbound: {auth: {ip_allow: [10.0.0.0/8]}}\n",
    "small.yaml": 'version: 1\ntrackdrive: {lead_token: "${GENERIC_JSON_LEAD_TOKEN}"}\n'
                  "lead: {caller_id: $.phone}\ninbound: {max_body: 1KiB, files: refuse}\n",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("bad-input")
    mappings = workdir / "mappings"
    mappings.mkdir()
    for source in ("generic-json", "typeform"):
        (mappings / f"{source}.yaml").write_text((SHIPPED_MAPPINGS / f"{source}.yaml").read_text())
    for name, text in EXTRA_SOURCES.items():
        (mappings / name).write_text(text)
    running = Stack(workdir).start()
    yield running
    running.stop()


def error_of(answer: requests.Response) -> dict:
    assert answer.headers["Content-Type"].startswith("application/json"), answer.text
    return answer.json()["error"]


def test_unknown_source_is_404(stack: Stack) -> None:
    answer = requests.post(f"{stack.url}/hooks/nobody", json=GOOD_LEAD, timeout=10)
    assert answer.status_code == 404
    assert error_of(answer)["code"] == "unknown_source"


def test_malformed_json_is_400_with_position(stack: Stack) -> None:
    answer = requests.post(f"{stack.url}/hooks/generic-json", data=b'{"contact": {"phone": ', headers=JSON,
                           timeout=10)
    assert answer.status_code == 400
    assert error_of(answer)["code"] == "malformed_body"


def test_unsupported_content_type_is_415(stack: Stack) -> None:
    answer = requests.post(f"{stack.url}/hooks/generic-json", data=b"%PDF-1.4",
                           headers={**JSON, "Content-Type": "application/pdf"}, timeout=10)
    assert answer.status_code == 415
    assert error_of(answer)["code"] == "unsupported_media_type"


def test_oversized_body_is_413_by_length_and_while_streaming(stack: Stack) -> None:
    big = b'{"phone": "' + b"1" * 4096 + b'"}'
    answer = requests.post(f"{stack.url}/hooks/small", data=big, headers=JSON, timeout=10)
    assert answer.status_code == 413
    assert error_of(answer)["code"] == "payload_too_large"
    chunked = requests.post(f"{stack.url}/hooks/small", data=iter([big[:2000], big[2000:]]), headers=JSON,
                            timeout=10)
    assert chunked.status_code == 413


def test_file_upload_refused_by_config_is_400(stack: Stack) -> None:
    answer = requests.post(f"{stack.url}/hooks/small", data={"phone": "5122010002"},
                           files={"resume": ("cv.txt", b"hello")}, timeout=10)
    assert answer.status_code == 400
    assert error_of(answer)["code"] == "files_refused"


def test_missing_token_is_401_and_never_echoes_the_secret(stack: Stack) -> None:
    answer = requests.post(f"{stack.url}/hooks/generic-json", json=GOOD_LEAD,
                           headers={"X-Api-Key": "wrong"}, timeout=10)
    assert answer.status_code == 401
    assert "example-key" not in answer.text


def test_bad_signature_is_401(stack: Stack) -> None:
    answer = requests.post(f"{stack.url}/hooks/typeform", data=b'{"form_response": {}}',
                           headers={"Content-Type": "application/json",
                                    "Typeform-Signature": "sha256=bm90IGl0"}, timeout=10)
    assert answer.status_code == 401
    assert "Typeform-Signature" in error_of(answer)["message"]


def test_address_outside_the_allow_list_is_403(stack: Stack) -> None:
    answer = requests.post(f"{stack.url}/hooks/private-net", json={"phone": "5122010003"},
                           headers={"X-Forwarded-For": "10.1.2.3"}, timeout=10)
    # 127.0.0.1 is a trusted proxy, so the forwarded address counts here: that one is allowed.
    assert answer.status_code == 202, answer.text
    answer = requests.post(f"{stack.url}/hooks/private-net", json={"phone": "5122010003"}, timeout=10)
    assert answer.status_code == 403
    assert error_of(answer)["code"] == "forbidden"


def test_source_with_missing_secret_is_503_naming_the_variable(stack: Stack) -> None:
    answer = requests.post(f"{stack.url}/hooks/needs-secret", json={"phone": "5122010004"}, timeout=10)
    assert answer.status_code == 503
    assert "NOT_SET_ANYWHERE_TOKEN" in json.dumps(error_of(answer))


def test_unmappable_lead_is_422_naming_field_paths_and_rule(stack: Stack) -> None:
    answer = requests.post(f"{stack.url}/hooks/generic-json", json={"lead_id": "no-phone", "contact": {}},
                           headers=JSON, timeout=10)
    assert answer.status_code == 422
    error = error_of(answer)
    assert (error["field"], error["rule"]) == ("caller_id", "required")
    assert error["paths"] and error["source"] == "generic-json"


def test_junk_never_gets_a_500(stack: Stack) -> None:
    junk = [b"\x00\xff\xfe", b"[1,2", b'{"a":' * 500, b"a=%zz&b", "{\"phone\": \"\u2603\"}".encode("utf-16"),
            b"--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--x--"]
    types = ["application/json", "text/plain", "application/x-www-form-urlencoded",
             "multipart/form-data; boundary=x", "application/json; charset=klingon", ""]
    for body in junk:
        for content_type in types:
            for method in ("POST", "PUT", "GET"):
                answer = requests.request(method, f"{stack.url}/hooks/generic-json", data=body,
                                          headers={**JSON, "Content-Type": content_type}, timeout=10)
                assert answer.status_code < 500, (body[:40], content_type, method, answer.text)
                if answer.status_code >= 400:
                    assert error_of(answer)["code"]


# --- a store that cannot write: a real small filesystem that fills up or turns read-only ---

@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)])


def post_leads(stack: Stack, prefix: str, count: int) -> list[requests.Response]:
    return [requests.post(f"{stack.url}/hooks/generic-json", headers=JSON, timeout=10,
                          json={"lead_id": f"{prefix}-{i}", "contact": {"phone": f"512201{i:04d}"}})
            for i in range(count)]


def fill_up(path: Path) -> None:
    with open(path, "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError:
            pass


def test_full_disk_and_read_only_store_answer_503(tmp_path: Path, small_disk: Path) -> None:
    disk_stack = Stack(tmp_path / "work", env_overrides={"RELAY_DATABASE_URL": f"sqlite:///{small_disk / 'relay.db'}"})
    (tmp_path / "work").mkdir()
    disk_stack.start()
    try:
        assert {a.status_code for a in post_leads(disk_stack, "before", 3)} == {202}
        fill_up(small_disk / "filler")
        answers = post_leads(disk_stack, "full", 200)
        codes = {a.status_code for a in answers}
        assert codes <= {202, 503}, codes
        assert 503 in codes, "a full disk must be answered 503"
        assert all(error_of(a)["code"] == "store_unavailable" for a in answers if a.status_code == 503)

        (small_disk / "filler").unlink()
        assert {a.status_code for a in post_leads(disk_stack, "freed", 3)} == {202}

        # A filesystem with files open for writing cannot turn read-only, so restart around it.
        disk_stack.relay.stop()
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        disk_stack.start_relay()
        answers = post_leads(disk_stack, "readonly", 3)
        assert {a.status_code for a in answers} == {503}
        assert all(error_of(a)["code"] == "store_unavailable" for a in answers)
        disk_stack.relay.stop()
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
        disk_stack.start_relay()
        assert {a.status_code for a in post_leads(disk_stack, "writable", 3)} == {202}
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)])
        disk_stack.stop()
