"""The registry's reload: per file, atomic, and keeping the last good version of a broken file."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from relay.intake.registry import SourceRegistry
from relay.intake.watcher import MappingWatcher
from tests.reload.mappings_fixture import BETA, BROKEN, ENV, V1, V2, configmap_layout, save_by_rename, write


@pytest.fixture
def mappings(tmp_path: Path) -> Path:
    directory = tmp_path / "mappings"
    directory.mkdir()
    write(directory / "acme.yaml", V1)
    return directory


def test_edit_is_picked_up(mappings: Path):
    registry = SourceRegistry.load(mappings)
    first = registry.get("acme").version
    write(mappings / "acme.yaml", V2)
    report = registry.reload()
    assert report.updated == ("acme",)
    assert registry.get("acme").version != first


def test_unchanged_directory_reloads_nothing(mappings: Path):
    registry = SourceRegistry.load(mappings)
    source = registry.get("acme")
    assert not registry.reload().changed
    assert registry.get("acme") is source


def test_broken_edit_keeps_last_good_version_and_reports_it(mappings: Path):
    registry = SourceRegistry.load(mappings)
    good = registry.get("acme")
    write(mappings / "acme.yaml", BROKEN)
    report = registry.reload()
    assert report.broken == ("acme",)
    assert registry.get("acme") is good
    assert registry.is_stale("acme")
    assert "no_such_transform" in str(registry.problems_for("acme")[0])
    write(mappings / "acme.yaml", V2)
    assert registry.reload().updated == ("acme",)
    assert registry.problems_for("acme") == []
    assert not registry.is_stale("acme")


def test_broken_new_file_is_not_served_but_reported(mappings: Path):
    registry = SourceRegistry.load(mappings)
    write(mappings / "beta.yaml", BROKEN)
    assert registry.reload().broken == ("beta",)
    assert registry.get("beta") is None
    assert registry.problems_for("beta")


def test_add_and_remove(mappings: Path):
    registry = SourceRegistry.load(mappings)
    write(mappings / "beta.yaml", BETA)
    assert registry.reload().added == ("beta",)
    assert registry.names() == ["acme", "beta"]
    (mappings / "beta.yaml").unlink()
    assert registry.reload().removed == ("beta",)
    assert registry.get("beta") is None


def test_other_sources_untouched_by_a_broken_one(mappings: Path):
    write(mappings / "beta.yaml", BETA)
    registry = SourceRegistry.load(mappings)
    beta = registry.get("beta")
    write(mappings / "acme.yaml", BROKEN)
    registry.reload()
    assert registry.get("beta") is beta


def test_rename_save_is_seen(mappings: Path):
    registry = SourceRegistry.load(mappings)
    first = registry.get("acme").version
    save_by_rename(mappings / "acme.yaml", V2)
    assert registry.reload().updated == ("acme",)
    assert registry.get("acme").version != first


def test_configmap_symlink_swap_is_seen(tmp_path: Path):
    directory = tmp_path / "configmap"
    directory.mkdir()
    configmap_layout(directory, {"acme.yaml": V1}, "gen1")
    registry = SourceRegistry.load(directory)
    first = registry.get("acme").version
    configmap_layout(directory, {"acme.yaml": V2}, "gen2")
    assert registry.reload().updated == ("acme",)
    assert registry.get("acme").version != first
    assert registry.names() == ["acme"]  # ..data and ..gen* are never sources


def test_test_files_and_editor_leftovers_are_not_sources(mappings: Path):
    write(mappings / "acme.test.yaml", "cases: []\n")
    (mappings / ".#acme.yaml").symlink_to("user@host.1234")  # emacs lock file: a dangling link
    registry = SourceRegistry.load(mappings)
    assert registry.names() == ["acme"]
    assert registry.problems == []


def test_unreadable_directory_keeps_sources(mappings: Path, tmp_path: Path):
    registry = SourceRegistry.load(mappings)
    mappings.rename(tmp_path / "elsewhere")
    assert not registry.reload().changed
    assert registry.names() == ["acme"]


def test_watcher_reloads_only_when_the_fingerprint_moves(mappings: Path):
    registry = SourceRegistry.load(mappings)
    watcher = MappingWatcher(registry, ENV)
    assert not watcher.check().changed
    write(mappings / "acme.yaml", V2)
    assert watcher.check().updated == ("acme",)
    assert not watcher.check().changed


def test_forced_reload_recompiles_everything(mappings: Path):
    registry = SourceRegistry.load(mappings)
    source = registry.get("acme")
    watcher = MappingWatcher(registry, ENV)
    watcher.request_reload()
    assert watcher.check().updated == ("acme",)
    assert registry.get("acme") is not source


def test_watcher_logs_counts_and_registers_secrets(mappings: Path, caplog: pytest.LogCaptureFixture):
    from relay import logs

    registry = SourceRegistry.load(mappings)
    watcher = MappingWatcher(registry, ENV)
    write(mappings / "beta.yaml", BETA)
    watcher.check()
    assert ENV["BETA_LEAD_TOKEN"] not in logs.mask_text(f"token={ENV['BETA_LEAD_TOKEN']}")

    errors_before = reload_errors("acme")
    write(mappings / "acme.yaml", BROKEN)
    with caplog.at_level(logging.ERROR, logger="relay.reload"):
        watcher.check()
    record = next(r for r in caplog.records if getattr(r, "event", "") == "mapping_reload_error")
    assert record.source == "acme" and record.problems
    if errors_before is not None:
        assert reload_errors("acme") == errors_before + 1


def reload_errors(source: str) -> float | None:
    try:
        from relay.metrics import MAPPING_RELOAD_ERRORS
    except ImportError:
        return None
    return MAPPING_RELOAD_ERRORS.labels(source)._value.get()
