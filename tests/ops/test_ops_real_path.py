"""The real path: gunicorn with several workers, the sandbox, the shipped mappings and samples.

Every log line either process writes is scanned for the secrets and the phone
numbers this test used, in every spelling; the metrics scraped from the real
server must count exactly what was sent, whichever worker handled it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qsl, urlencode

import phonenumbers
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from relay.intake.lint import load_directory
from relay.mapping.httpfile import parse_http_file
from tests.support.procs import ROOT, free_port, gunicorn, sandbox

WAIT_S = 60.0  # an upper bound for slow machines, not a measurement
WORKERS = 3
MAPPINGS = ROOT / "mappings"
ADMIN_TOKEN = "ops-admin-token-7c1f0e9a5b"
DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
EXTRA_PHONES = ("(737) 555-0100", "+13125550111")  # used only by the bad requests below


@dataclass(frozen=True)
class Post:
    label: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def made_up_secrets() -> dict[str, str]:
    """A distinct, recognisable value for every variable a shipped mapping references."""
    sources, problems = load_directory(MAPPINGS, env=None)
    assert not problems, problems
    names = sorted({name for source in sources.values() for name in source.required_env()})
    return {name: f"ops-{name.lower().replace('_', '-')}-{index:02d}x9Q" for index, name in enumerate(names)}


def signature(auth, body: bytes, env: dict[str, str]) -> str:
    mac = hmac.new(env[auth.secret_envs[0]].encode(), body, DIGESTS[auth.algorithm]).digest()
    encoded = mac.hex() if auth.encoding == "hex" else base64.b64encode(mac).decode()
    return f"{auth.prefix or ''}{encoded}"


def fixture_posts(env: dict[str, str]) -> list[Post]:
    """Every shipped sample, re-signed and re-keyed with this test's secrets."""
    sources, _ = load_directory(MAPPINGS, env=None)
    posts = []
    for path in sorted((MAPPINGS / "fixtures").glob("*/*.http")):
        source = sources[path.parent.name]
        request = parse_http_file(path.read_bytes())
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        query = parse_qsl(request.query, keep_blank_values=True)
        inbound = source.inbound
        if inbound.hmac:
            headers[inbound.hmac.header] = signature(inbound.hmac, request.body, env)
        if inbound.token and inbound.token.header:
            headers[inbound.token.header] = env[inbound.token.secret_envs[0]]
        if inbound.token and inbound.token.query:
            query = [(k, env[inbound.token.secret_envs[0]] if k == inbound.token.query else v) for k, v in query]
        target = f"/hooks/{source.name}" + (f"?{urlencode(query)}" if query else "")
        posts.append(Post(f"sample {path.name}", request.method, target, headers, request.body))
    return posts


def bad_posts(env: dict[str, str]) -> list[Post]:
    json_key = {"X-Api-Key": env["GENERIC_JSON_API_KEY"]}
    lead = json.dumps({"lead_id": "L-bad-1", "contact": {"phone": EXTRA_PHONES[0]}}).encode()
    return [
        Post("wrong key", "POST", "/hooks/generic-json", {"Content-Type": "application/json",
                                                          "X-Api-Key": env["GENERIC_JSON_API_KEY"] + "x"}, lead),
        Post("bad signature", "POST", "/hooks/typeform", {"Content-Type": "application/json",
                                                          "Typeform-Signature": "sha256=AAAA"}, lead),
        Post("unknown source", "POST", f"/hooks/nobody?phone={EXTRA_PHONES[1]}", {}, b""),
        Post("malformed", "POST", "/hooks/generic-json", {"Content-Type": "application/json", **json_key},
             b'{"contact": {"phone": "' + EXTRA_PHONES[1].encode() + b'"'),
        Post("unsupported", "POST", "/hooks/generic-json", {"Content-Type": "text/csv", **json_key},
             EXTRA_PHONES[1].encode()),
        Post("refused", "POST", "/hooks/generic-json", {"Content-Type": "application/json", **json_key},
             json.dumps({"lead_id": "L-bad-2", "contact": {"phone": "555-0100"}}).encode()),
        Post("too large", "POST", "/hooks/generic-json", {"Content-Type": "application/json", **json_key},
             b"x" * (300 * 1024)),
        Post("secret in a request id", "POST", "/hooks/generic-json",
             {"Content-Type": "application/json", **json_key, "X-Request-ID": env["GENERIC_JSON_API_KEY"]}, lead),
    ]


def phone_spellings(raw: str) -> set[str]:
    number = phonenumbers.parse(raw, "US")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return {raw, e164, e164.lstrip("+"), str(number.national_number)}


def phones_in(posts: list[Post]) -> set[str]:
    found = set(EXTRA_PHONES)
    for path in (MAPPINGS / "fixtures").glob("*/*.http"):
        text = path.read_text()
        body = text.split("\n\n", 1)[-1]
        found.update(re.findall(r"\+1\d{10}|\(\d{3}\) \d{3}-\d{4}|\b\d{3}-\d{3}-\d{4}\b|phone_home=(\d{10})", body))
    return {spelling for raw in found if raw for spelling in phone_spellings(raw)}


def scrape(base: str) -> dict[str, list]:
    response = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def total(samples: dict[str, list], family: str, sample: str, **labels: str) -> float:
    return sum(s.value for s in samples.get(family, []) if s.name == sample
               and all(s.labels.get(k) == v for k, v in labels.items()))


def wait_for(condition, what: str) -> dict[str, list]:
    deadline = time.monotonic() + WAIT_S
    while True:
        state = condition()
        if state is not None:
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], list]]:
    secrets = made_up_secrets()
    sandbox_port, relay_port = free_port(), free_port()
    fake_trackdrive = sandbox(sandbox_port, tmp_path / "sandbox.log")
    env = {**secrets, "RELAY_ADMIN_TOKEN": ADMIN_TOKEN,
           "RELAY_DATABASE_URL": f"sqlite:///{tmp_path / 'relay.db'}", "RELAY_MAPPINGS_DIR": str(MAPPINGS),
           "TRACKDRIVE_BASE_URL": f"http://127.0.0.1:{sandbox_port}", "RELAY_POLL_INTERVAL": "0.2",
           # the sandbox plays the vendor APIs the fetch sources read
           "FACEBOOK_GRAPH_URL": f"http://127.0.0.1:{sandbox_port}",
           "HUBSPOT_API_URL": f"http://127.0.0.1:{sandbox_port}",
           "RELAY_RETRY_DELAYS": "0.5", "RELAY_GRACEFUL_TIMEOUT": "5", "RELAY_DRAIN_SECONDS": "0",
           "RELAY_LOG_LEVEL": "debug", "RELAY_ACCESS_LOG": "1"}
    relay = gunicorn(relay_port, tmp_path / "gunicorn.log", env, workers=WORKERS)
    processes = [fake_trackdrive.start(), relay.start()]
    try:
        fake_trackdrive.wait_http(f"http://127.0.0.1:{sandbox_port}/_sandbox/stats", timeout_s=WAIT_S)
        relay.wait_http(f"http://127.0.0.1:{relay_port}/healthz", timeout_s=WAIT_S)
        yield f"http://127.0.0.1:{relay_port}", secrets, processes
    finally:
        for process in reversed(processes):
            process.stop(timeout_s=WAIT_S)


def test_real_path_counts_exactly_and_logs_no_secret_or_phone(running):
    base, secrets, processes = running
    posts = fixture_posts(secrets) + bad_posts(secrets)
    answers = []
    for post in posts:
        response = requests.request(post.method, base + post.path, headers=post.headers, data=post.body,
                                    timeout=WAIT_S)
        assert response.status_code < 500, (post.label, response.text)
        answers.append(response)
    assert {a.status_code for a in answers} >= {202, 401, 404, 400, 413, 415, 422}
    queued = sum(1 for a in answers if a.status_code == 202)
    assert queued >= 5
    fetching = sum(1 for a in answers if a.status_code == 202 and a.json()["status"] == "fetching")

    # Scrapes land on any worker: the counts must be the sum over all of them.
    samples = scrape(base)
    assert total(samples, "relay_requests", "relay_requests_total") == len(posts)
    assert total(samples, "relay_requests", "relay_requests_total", outcome="queued") == queued - fetching
    assert total(samples, "relay_requests", "relay_requests_total", outcome="fetching") == fetching
    assert total(samples, "relay_ack_seconds", "relay_ack_seconds_count") == len(posts)
    for _ in range(WORKERS * 2):
        assert total(scrape(base), "relay_requests", "relay_requests_total") == len(posts)

    def all_delivered() -> dict[str, list] | None:
        now = scrape(base)
        delivered = total(now, "relay_delivery_attempts", "relay_delivery_attempts_total", result="delivered")
        pending = total(now, "relay_outbox_pending", "relay_outbox_pending")
        return now if delivered == queued and pending == 0 else None

    settled = wait_for(all_delivered, "every queued lead to be delivered")
    assert total(settled, "relay_delivery_latency_seconds", "relay_delivery_latency_seconds_count") == queued
    assert total(settled, "relay_outbox_dead", "relay_outbox_dead") == 0
    assert total(settled, "relay_outbox_oldest_pending_age_seconds",
                 "relay_outbox_oldest_pending_age_seconds") == 0

    ready = requests.get(f"{base}/readyz", headers={"X-Admin-Token": ADMIN_TOKEN}, timeout=10).json()
    assert ready["status"] == "ready" and all(s["secrets_present"] for s in ready["sources"].values())
    assert requests.get(f"{base}/metrics", timeout=10).status_code == 401  # a token is configured

    for process in reversed(processes):
        process.stop(timeout_s=WAIT_S)
    relay_log, sandbox_log = processes[1].log(), processes[0].log()
    relay_lines = [line for line in relay_log.splitlines() if line.strip()]
    entries = [json.loads(line) for line in relay_lines]  # every line gunicorn wrote is JSON
    request_entries = [e for e in entries
                       if e.get("logger") == "relay.request" and e.get("path", "").startswith("/hooks/")]
    assert len(request_entries) == len(posts)
    assert all(e.get("request_id") and e.get("outcome") for e in request_entries)
    attempts = [e for e in entries if e.get("logger") == "relay.delivery" and e.get("result") == "delivered"]
    assert len(attempts) == queued and all(e.get("request_id") for e in attempts)

    forbidden = set(secrets.values()) | {ADMIN_TOKEN} | phones_in(posts)
    for name, text in (("gunicorn", relay_log), ("sandbox", sandbox_log)):
        for line in text.splitlines():
            leaked = [value for value in forbidden if value in line]
            assert not leaked, f"{name} log line leaks {leaked}: {line}"
