"""docs/mapping.schema.json, the schema editors use, agrees with the mapping files."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "mapping.schema.json").read_text())
SHIPPED = sorted(p for p in (ROOT / "mappings").glob("*.yaml") if not p.name.endswith(".test.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_mapping_is_valid_for_editors(path: Path) -> None:
    validator = jsonschema_rs.validator_for(SCHEMA)
    # Editors parse YAML either way: with type guessing (safe_load) or all text (BaseLoader).
    for loader in (yaml.SafeLoader, yaml.BaseLoader):
        document = yaml.load(path.read_text(), Loader=loader)
        assert [error.message for error in validator.iter_errors(document)] == []


def test_the_schema_flags_what_lint_flags() -> None:
    validator = jsonschema_rs.validator_for(SCHEMA)
    broken = {"version": "1", "trackdrive": {"lead_token": "${T}"}, "lead": {"caller_id": "$.phone"},
              "dataa": {}, "inbound": {"mode": "sometimes"}}
    messages = " ".join(error.message for error in validator.iter_errors(broken))
    assert "dataa" in messages
    assert "sometimes" in messages
