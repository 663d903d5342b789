import json
from pathlib import Path

import pytest

from relay.cli import main
from relay.mapping.model import Problem

from . import fakes

LEAD = b'{"phone": "+15125550147", "first_name": "Ana"}'


@pytest.fixture
def fake_compiler(monkeypatch):
    """Stand in for relay.mapping's compiler entry points."""
    import relay.intake.lint
    import relay.mapping

    def lint_paths(paths, *, env=None):
        problems = []
        for path in paths:
            for file in sorted(Path(path).glob("*.yaml")) if Path(path).is_dir() else [Path(path)]:
                if "bad" in file.read_text():
                    problems.append(Problem(str(file), 2, 1, "unknown key 'bad'", "unknown_key"))
                if env is not None and "ACME_LEAD_TOKEN" not in env:
                    problems.append(Problem(str(file), 1, 1, "ACME_LEAD_TOKEN is not set", "missing_env"))
        return problems

    monkeypatch.setattr(relay.mapping, "load_source", fakes.fake_loader, raising=False)
    monkeypatch.setattr(relay.intake.lint, "lint_paths", lint_paths)


@pytest.fixture
def mappings(tmp_path, monkeypatch):
    monkeypatch.delenv("RELAY_MAPPINGS_DIR", raising=False)
    directory = tmp_path / "maps"
    directory.mkdir()
    (directory / "acme.yaml").write_text("version: 1\n")
    (directory / "acme.test.yaml").write_text(
        "cases:\n"
        "  - name: good\n"
        "    request: {body: '%s'}\n"
        "    expect: {call_subset: {body: {caller_id: '+15125550147'}}}\n" % LEAD.decode())
    return directory


def test_lint_clean_and_env_check(fake_compiler, mappings, monkeypatch, capsys):
    monkeypatch.delenv("ACME_LEAD_TOKEN", raising=False)
    assert main(["mappings", "lint", "--no-env", str(mappings)]) == 0
    assert "1 mapping file(s) OK" in capsys.readouterr().out
    assert main(["mappings", "lint", str(mappings)]) == 1
    assert "ACME_LEAD_TOKEN is not set [missing_env]" in capsys.readouterr().out
    monkeypatch.setenv("ACME_LEAD_TOKEN", "set")
    assert main(["mappings", "lint", str(mappings)]) == 0


def test_lint_reports_file_line_col_and_defaults_to_the_env_dir(fake_compiler, mappings, monkeypatch, capsys):
    (mappings / "acme.yaml").write_text("version: 1\nbad: 1\n")
    monkeypatch.setenv("RELAY_MAPPINGS_DIR", str(mappings))
    assert main(["mappings", "lint", "--no-env"]) == 1
    out = capsys.readouterr().out
    assert f"{mappings / 'acme.yaml'}:2:1: unknown key 'bad' [unknown_key]" in out
    assert "1 error(s) in 1 file(s)" in out


def test_lint_missing_path(fake_compiler, tmp_path, capsys):
    assert main(["mappings", "lint", str(tmp_path / "nope")]) == 1
    assert "no such file" in capsys.readouterr().out


def test_test_command_pass_fail_and_update(fake_compiler, mappings, capsys):
    assert main(["mappings", "test", str(mappings)]) == 0
    assert "PASS acme: good" in capsys.readouterr().out
    test_file = mappings / "acme.test.yaml"
    test_file.write_text(test_file.read_text().replace("+15125550147'}}}", "+1000'}}}"))
    assert main(["mappings", "test", str(mappings)]) == 1
    out = capsys.readouterr().out
    assert "FAIL acme: good" in out and '-      "caller_id": "+1000"' in out and "0 passed, 1 failed" in out
    assert main(["mappings", "test", "--update", str(test_file)]) == 0
    assert "UPDATED acme: good" in capsys.readouterr().out
    assert main(["mappings", "test", str(mappings / "acme.yaml")]) == 0


def test_test_command_without_tests_fails(fake_compiler, tmp_path, capsys):
    assert main(["mappings", "test", str(tmp_path)]) == 1
    assert "no test files" in capsys.readouterr().out


def preview(capsys, *argv):
    code = main(["preview", *argv])
    return code, json.loads(capsys.readouterr().out)


def test_preview_call_from_a_raw_body(fake_compiler, mappings, tmp_path, capsys):
    body = tmp_path / "lead.json"
    body.write_bytes(LEAD)
    code, shown = preview(capsys, "acme", str(body), "--mappings", str(mappings))
    assert code == 0
    assert shown["outcome"] == "call"
    assert shown["call"]["body"]["lead_token"] == "${ACME_LEAD_TOKEN}"


def test_preview_by_mapping_path_and_http_file(fake_compiler, mappings, tmp_path, capsys):
    request = tmp_path / "lead.http"
    request.write_bytes(b"POST /x HTTP/1.1\nContent-Type: application/json\n\n" + LEAD + b"\n")
    code, shown = preview(capsys, str(mappings / "acme.yaml"), str(request), "--query", "a=1")
    assert (code, shown["outcome"]) == (0, "call")


@pytest.mark.parametrize("body, outcome, detail", [
    (b'{"first_name": "Ana"}', "refusal", {"field": "caller_id", "rule": "required"}),
    (b'{"phone": "1", "email": "t@example.test"}', "drop", {"reason": "vendor test lead"}),
    (b'{oops', "error", {"code": "malformed_body"}),
])
def test_preview_non_calls_exit_2(fake_compiler, mappings, tmp_path, capsys, body, outcome, detail):
    path = tmp_path / "body.txt"
    path.write_bytes(body)
    code, shown = preview(capsys, "acme", str(path), "--mappings", str(mappings),
                          "--content-type", "application/json")
    assert code == 2
    assert shown["outcome"] == outcome
    assert detail.items() <= shown[outcome].items()


def test_preview_unknown_source(fake_compiler, mappings, tmp_path, capsys):
    path = tmp_path / "body.txt"
    path.write_bytes(LEAD)
    code, shown = preview(capsys, "nobody", str(path), "--mappings", str(mappings))
    assert code == 2 and shown["error"]["code"] == "unknown_source"
