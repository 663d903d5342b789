"""One lister: lint, the CLI, serving and reload agree on which files are sources."""
from __future__ import annotations

from pathlib import Path

from relay.cli import main
from relay.intake.files import mapping_files, scan
from relay.intake.lint import lint_paths
from relay.intake.registry import SourceRegistry
from tests.intake.batch_mappings import YML

BROKEN = "version: 1\nlead: {}\n"


def test_yml_and_yaml_are_both_sources_test_files_and_dotfiles_are_not(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(YML)
    (tmp_path / "b.yaml").write_text(YML)
    (tmp_path / "b.test.yaml").write_text("cases: []\n")
    (tmp_path / "c.test.yml").write_text("cases: []\n")
    (tmp_path / ".d.yaml").write_text(YML)
    (tmp_path / "notes.txt").write_text("x")
    listed = scan(tmp_path)
    assert listed is not None
    files, problems = listed
    assert [item.name for item in files] == ["a", "b"] and problems == []


def test_one_source_in_two_files_is_a_problem_and_neither_is_served(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(YML)
    (tmp_path / "a.yaml").write_text(YML)
    registry = SourceRegistry.load(tmp_path)
    assert registry.get("a") is None
    assert {problem.code for problem in registry.problems} == {"duplicate_source"}
    assert {problem.code for problem in lint_paths([tmp_path])} == {"duplicate_source"}
    assert len(mapping_files(tmp_path)) == 2


def test_lint_fails_a_folder_with_a_good_yml_and_a_broken_yml(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a.yml").write_text(YML)
    (tmp_path / "b.yml").write_text(BROKEN)
    assert main(["mappings", "lint", "--no-env", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "b.yml" in out and "2 mapping file(s) checked" in out
    registry = SourceRegistry.load(tmp_path)
    assert registry.names() == ["a"] and registry.problems_for("b")


def test_an_empty_mapping_file_fails_lint_as_it_is_not_served(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    assert [problem.code for problem in lint_paths([tmp_path])] == ["empty_file"]
    assert SourceRegistry.load(tmp_path).get("empty") is None
