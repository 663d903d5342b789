"""The fetch section and shared fragments: compiled at load, every mistake with its place."""
from __future__ import annotations

from pathlib import Path

from relay.intake.files import mapping_files
from relay.mapping import compile_file
from relay.mapping.fetch import NOTIFICATION_KEY, fetched_payload

ROOT = Path(__file__).resolve().parents[3]

HEAD = """version: 1
trackdrive:
  lead_token: ${LEAD_TOKEN}
lead:
  caller_id: {path: $.phone, transform: phone}
"""


def compiled(tmp_path: Path, text: str, fragment: str | None = None) -> tuple[object, list[str]]:
    if fragment is not None:
        (tmp_path / "shared").mkdir(exist_ok=True)
        (tmp_path / "shared" / "part.yaml").write_text(fragment)
    path = tmp_path / "acme.yaml"
    path.write_text(text)
    source, problems = compile_file(path, env=None)
    return source, [f"{Path(p.file).name}:{p.line}: {p.message} [{p.code}]" for p in problems]


def test_a_fetch_section_compiles_with_its_secrets_required(tmp_path: Path) -> None:
    source, problems = compiled(tmp_path, HEAD + """fetch:
  url: "${API_URL:-https://api.example.com}/v1/leads/{$.lead.id}"
  query: {fields: "a,b", account: "${ACCOUNT_ID}"}
  headers: {Accept: application/json}
  auth: {bearer: "${API_TOKEN}"}
  timeout: 5s
  rate_limit: {per_second: 3}
""")
    assert problems == []
    spec = source.fetch  # type: ignore[attr-defined]
    assert {"API_TOKEN", "ACCOUNT_ID"} <= source.env_names  # type: ignore[attr-defined]
    assert "API_URL" not in source.env_names  # type: ignore[attr-defined]
    request = spec.request({"lead": {"id": "a/b?c"}}, {"API_TOKEN": "t0k", "ACCOUNT_ID": "9"})
    assert request.url == "https://api.example.com/v1/leads/a%2Fb%3Fc"  # an id cannot reshape the URL
    assert request.params == {"fields": "a,b", "account": "9"}
    assert request.headers["Authorization"] == "Bearer t0k"
    assert (request.timeout_s, spec.rate_per_s) == (5.0, 3.0)
    assert "t0k" not in repr(request)
    assert spec.missing_ids({"lead": {}}) == ["$.lead.id"]


def test_fetch_mistakes_are_each_reported(tmp_path: Path) -> None:
    _, problems = compiled(tmp_path, HEAD + """fetch:
  url: "{$.host}/leads/${lower_case}"
  method: DELETE
  auth: {bearer: plain-text-token}
  timeout: soon
  rate_limit: {per_second: 0}
  retries: 3
""")
    text = "\n".join(problems)
    for code in ("bad_env_ref", "invalid_option", "literal_secret", "bad_duration", "bad_argument",
                 "unknown_key"):
        assert f"[{code}]" in text, text
    assert "plain-text-token" not in text


def test_an_unset_secret_is_reported_when_the_environment_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(HEAD + 'fetch:\n  url: "https://x.example/{$.id}"\n  auth: {bearer: "${API_TOKEN}"}\n')
    _, problems = compile_file(path, env={"LEAD_TOKEN": "x"})
    assert any(p.code == "missing_env" and "API_TOKEN" in p.message for p in problems)


def test_the_fetched_answer_is_the_payload_with_the_notification_beside_it() -> None:
    assert fetched_payload({"id": "1"}, {"objectId": 1}) == {"id": "1", NOTIFICATION_KEY: {"objectId": 1}}


def test_an_included_fragment_adds_fields_and_the_file_wins(tmp_path: Path) -> None:
    source, problems = compiled(tmp_path, HEAD + "include: shared/part.yaml\ndata:\n  city: $.town\n",
                                "data:\n  city: $.city\n  zip_code: $.zip\n")
    assert problems == []
    call = source.map_payload({"phone": "5125550147", "city": "A", "town": "B", "zip": "1"})  # type: ignore
    assert call.body["data"] == {"city": "B", "zip_code": "1"}  # type: ignore[union-attr]


def test_a_fragment_problem_names_the_fragment_file(tmp_path: Path) -> None:
    _, problems = compiled(tmp_path, HEAD + "include: shared/part.yaml\n",
                           "data:\n  city: {path: $.city, transform: nonsense}\ntrackdrive: {}\n")
    assert any(p.startswith("part.yaml:2:") for p in problems), problems
    assert any(p.startswith("part.yaml:3:") and "unknown_key" in p for p in problems), problems


def test_an_include_outside_the_directory_is_refused(tmp_path: Path) -> None:
    _, problems = compiled(tmp_path, HEAD + "include: ../../etc/passwd\n")
    assert any("[bad_include]" in p for p in problems), problems


def test_a_changed_fragment_changes_the_version(tmp_path: Path) -> None:
    first, _ = compiled(tmp_path, HEAD + "include: shared/part.yaml\n", "data:\n  city: $.city\n")
    second, _ = compiled(tmp_path, HEAD + "include: shared/part.yaml\n", "data:\n  city: $.town\n")
    assert first.version != second.version  # type: ignore[attr-defined]


def test_the_shared_fragment_is_never_served_as_a_source() -> None:
    names = [path.name for path in mapping_files(ROOT / "mappings")]
    assert "meta-lead-fields.yaml" not in names and "facebook-leadgen.yaml" in names
