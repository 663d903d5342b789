"""Junk in, a 4xx JSON error out: never a 500 (seeded, bounded random requests)."""
from __future__ import annotations

import random
from pathlib import Path
from urllib.parse import quote

import pytest

from relay.mapping.model import BasicAuth, InboundSettings, TokenAuth
from relay.settings import Settings
from relay.web import create_app
from tests.web.test_web_real_mapping import ENV as REAL_ENV
from tests.web.test_web_real_mapping import MAPPINGS, write_mappings
from tests.web.web_fakes import META_HMAC, FakeDispatcher, FakeSource

ROUNDS = 300
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data",
                 "multipart/form-data; boundary=xyz", "text/plain", "application/xml", "",
                 "application/json; charset=latin-9", "\x00\xff", "application/x-www-form-urlencoded; charset=utf-7")
HEADER_NAMES = ("X-Forwarded-For", "Authorization", "X-Api-Key", "X-Hub-Signature-256", "Typeform-Signature",
                "X-Request-ID", "Idempotency-Key", "Transfer-Encoding")


def junk_text(rng: random.Random, size: int) -> str:
    alphabet = "aZ09 -_.,;:=&?/%{}[]\"'\\<>+*#@!~é☃\t"
    return "".join(rng.choice(alphabet) for _ in range(size))


def junk_body(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 400))
    if kind == 1:
        return junk_text(rng, rng.randrange(0, 200)).encode("utf-8")
    if kind == 2:
        return b'{"phone": "' + rng.randbytes(8).hex().encode() + b'", "a": [1, {"b": null}]}'
    return b"--xyz\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nhi\r\n--xyz--\r\n"


def junk_query(rng: random.Random) -> str:
    pairs = [f"{quote(junk_text(rng, 5))}={quote(junk_text(rng, 8))}" for _ in range(rng.randrange(4))]
    if rng.random() < 0.2:
        pairs.append("hub.mode=subscribe&hub.challenge=x&hub.verify_token=" + quote(junk_text(rng, 4)))
    if rng.random() < 0.2:
        pairs.append("%zz=%ff%00")
    return "&".join(pairs)


def junk_headers(rng: random.Random) -> dict[str, str]:
    return {name: junk_text(rng, rng.randrange(0, 30)).encode("utf-8").decode("latin-1")
            for name in rng.sample(HEADER_NAMES, rng.randrange(len(HEADER_NAMES)))
            if name != "Transfer-Encoding"}


def fire_junk(client, sources: list[str], seed: int) -> None:
    rng = random.Random(seed)
    for round_ in range(ROUNDS):
        name = rng.choice([*sources, junk_text(rng, 6).replace("/", "")])
        environ = {"REMOTE_ADDR": rng.choice(["127.0.0.1", "203.0.113.5", "::1", "junk"])}
        if rng.random() < 0.1:
            environ["CONTENT_LENGTH"] = rng.choice(["-5", "abc", "99999999999", "1"])
        method = rng.choice(METHODS)
        response = client.open(f"/hooks/{quote(name)}?{junk_query(rng)}", method=method,
                               data=junk_body(rng), content_type=rng.choice(CONTENT_TYPES),
                               headers=junk_headers(rng), environ_overrides=environ)
        assert response.status_code < 500, (round_, response.status_code, response.get_data()[:300])
        if response.status_code >= 400 and method != "HEAD":
            assert "error" in response.get_json(), (round_, response.get_data()[:300])


@pytest.mark.parametrize("seed", [1, 2])
def test_junk_never_gets_a_500_from_fake_sources(make_app, seed):
    sources = [
        FakeSource("acme"),
        FakeSource("signed", inbound=InboundSettings(hmac=META_HMAC, meta_verify_token_env="META_VERIFY_TOKEN")),
        FakeSource("tokened", inbound=InboundSettings(token=TokenAuth(secret_envs=("ACME_TOKEN",), query="k"),
                                                      ip_allow=("203.0.113.0/24",), idempotency_window_s=60)),
        FakeSource("basic", inbound=InboundSettings(basic=BasicAuth("ACME_USER", "ACME_PASS"),
                                                    max_body_bytes=100)),
    ]
    fire_junk(make_app(*sources).test_client(), [s.name for s in sources], seed)


@pytest.mark.parametrize("seed", [3, 4])
def test_junk_never_gets_a_500_from_real_mappings(tmp_path: Path, seed):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'relay.db'}", sqlite_synchronous="NORMAL",
                        mappings_dir=str(write_mappings(tmp_path / "mappings")), env=REAL_ENV,
                        delivery_enabled=False)
    app = create_app(settings, dispatcher=FakeDispatcher())
    fire_junk(app.test_client(), list(MAPPINGS), seed)
    app.extensions["relay"].store.close()
