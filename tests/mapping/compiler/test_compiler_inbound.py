"""The inbound section, idempotency keys, env names, and loading from disk."""
from __future__ import annotations

from pathlib import Path

import pytest

from relay.intake.lint import lint_paths, load_directory
from relay.mapping import MappingInvalid, load_source
from relay.mapping.model import BasicAuth, HmacAuth, RateLimit, TokenAuth

from compiler_helpers import compile_text, source_of

LEAD = """
lead:
  caller_id: $.phone
"""


def test_inbound_settings() -> None:
    source = source_of(LEAD + """
inbound:
  max_body: 1MiB
  files: refuse
  mode: sync
  sync_deadline: 500ms
  auth:
    token: {query: api_key, secret: ["${KEY_NEW}", "${KEY_OLD}"]}
    basic: {username: "${USER}", password: "${PASS}"}
    hmac: {preset: typeform, secret: "${TF_SECRET}"}
    ip_allow: [203.0.113.0/24, 198.51.100.7]
  meta_verify_token: ${META_VERIFY}
  rate_limit: {per_second: 50, burst: 100}
""")
    inbound = source.inbound
    assert inbound.max_body_bytes == 1024 * 1024
    assert (inbound.files, inbound.mode, inbound.sync_deadline_s) == ("refuse", "sync", 0.5)
    assert inbound.token == TokenAuth(secret_envs=("KEY_NEW", "KEY_OLD"), query="api_key")
    assert inbound.basic == BasicAuth("USER", "PASS")
    assert inbound.hmac == HmacAuth("Typeform-Signature", "sha256", "base64", "sha256=", ("TF_SECRET",))
    assert inbound.ip_allow == ("203.0.113.0/24", "198.51.100.7/32")
    assert inbound.meta_verify_token_env == "META_VERIFY"
    assert inbound.rate_limit == RateLimit(50.0, 100)
    assert source.required_env() == {"ACME_LEAD_TOKEN", "KEY_NEW", "KEY_OLD", "USER", "PASS",
                                      "TF_SECRET", "META_VERIFY"}
    assert source.missing_env({"ACME_LEAD_TOKEN": "x", "USER": "u"}) == [
        "KEY_NEW", "KEY_OLD", "META_VERIFY", "PASS", "TF_SECRET"]


def test_meta_preset_and_explicit_hmac() -> None:
    meta = source_of(LEAD + "inbound:\n  auth:\n    hmac: {preset: meta, secret: \"${S}\"}\n")
    assert meta.inbound.hmac == HmacAuth("X-Hub-Signature-256", "sha256", "hex", "sha256=", ("S",))
    explicit = source_of(LEAD + """
inbound:
  auth:
    hmac:
      header: X-Signature
      algorithm: sha1
      encoding: hex
      secret: ${S}
""")
    assert explicit.inbound.hmac == HmacAuth("X-Signature", "sha1", "hex", "", ("S",))


@pytest.mark.parametrize("text,seconds", [("5s", 5.0), ("24h", 86400.0), ("500ms", 0.5),
                                          ("10m", 600.0), ("7d", 604800.0), ("30", 30.0)])
def test_durations(text: str, seconds: float) -> None:
    source = source_of(LEAD + f"inbound:\n  sync_deadline: {text}\n")
    assert source.inbound.sync_deadline_s == seconds


@pytest.mark.parametrize("text,size", [("1000", 1000), ("256KiB", 262144), ("1MiB", 1048576),
                                       ("2KB", 2000)])
def test_sizes(text: str, size: int) -> None:
    assert source_of(LEAD + f"inbound:\n  max_body: {text}\n").inbound.max_body_bytes == size


def test_more_than_two_secrets_is_refused() -> None:
    _, problems = compile_text(LEAD + """
inbound:
  auth:
    token: {header: X-Key, secret: ["${A}", "${B}", "${C}"]}
""")
    assert [p.code for p in problems] == ["bad_argument"]


def test_idempotency_from_payload_value() -> None:
    source = source_of(LEAD + "inbound:\n  idempotency:\n    key: $.event_id\n    window: 1h\n")
    assert source.inbound.idempotency_window_s == 3600.0
    assert source.idempotency_key({"event_id": "01JD"}, {}) == "01JD"
    assert source.idempotency_key({"event_id": " "}, {}) is None
    assert source.idempotency_key({}, {}) is None


def test_idempotency_from_header_defaults_to_a_day() -> None:
    source = source_of(LEAD + "inbound:\n  idempotency:\n    key: {header: Idempotency-Key}\n")
    assert source.inbound.idempotency_window_s == 86400.0
    assert source.idempotency_key({}, {"idempotency-key": "abc"}) == "abc"
    assert source.idempotency_key({}, {}) is None


def test_no_idempotency_means_no_key() -> None:
    assert source_of(LEAD).idempotency_key({"event_id": "x"}, {"Idempotency-Key": "y"}) is None


def test_idempotency_template_over_prepared_payload() -> None:
    source = source_of("""
prepare: [decode_json: blob]
lead:
  caller_id: $.phone
inbound:
  idempotency:
    key: "{{ payload.blob.id }}-{{ payload.form }}"
""")
    assert source.idempotency_key({"blob": '{"id": 7}', "form": "f"}, {}) == "7-f"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


GOOD = "version: 1\ntrackdrive:\n  lead_token: ${ACME_LEAD_TOKEN}\nlead:\n  caller_id: $.phone\n"


def test_load_directory_keeps_good_sources_and_reports_bad_ones(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD)
    write(tmp_path, "acme.test.yaml", "cases: []\n")
    write(tmp_path, "broken.yaml", "version: 2\n")
    write(tmp_path, "Bad Name.yaml", GOOD)
    sources, problems = load_directory(tmp_path)
    assert list(sources) == ["acme"]
    assert sources["acme"].path == str(tmp_path / "acme.yaml")
    assert len(sources["acme"].version) == 12
    files = {Path(p.file).name for p in problems}
    assert files == {"broken.yaml", "Bad Name.yaml"}
    assert "bad_source_name" in {p.code for p in problems}


def test_missing_env_names_each_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "acme.yaml", GOOD)
    with pytest.raises(MappingInvalid) as caught:
        load_source(path, env={})
    assert [(p.code, p.line, p.column) for p in caught.value.problems] == [("missing_env", 3, 15)]
    assert "ACME_LEAD_TOKEN" in caught.value.problems[0].message
    assert load_source(path, env={"ACME_LEAD_TOKEN": "t"}).name == "acme"


def test_lint_paths_takes_files_and_directories(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD)
    bad = write(tmp_path, "bad.yaml", GOOD.replace("${ACME_LEAD_TOKEN}", "plain-token"))
    assert [p.code for p in lint_paths([str(tmp_path)])] == ["missing_key", "literal_secret"]
    assert [p.code for p in lint_paths([str(bad)])] == ["missing_key", "literal_secret"]


def test_version_is_the_file_hash(tmp_path: Path) -> None:
    import hashlib
    path = write(tmp_path, "acme.yaml", GOOD)
    assert load_source(path).version == hashlib.sha256(GOOD.encode()).hexdigest()[:12]


def test_source_is_frozen(tmp_path: Path) -> None:
    source = load_source(write(tmp_path, "acme.yaml", GOOD))
    with pytest.raises(AttributeError):
        source.name = "other"  # type: ignore[misc]
