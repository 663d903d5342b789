"""The editor schema and the compiler agree on every key name."""
from __future__ import annotations

import json
from pathlib import Path

from relay.mapping import compiler, inbound, trackdrive

SCHEMA = json.loads((Path(__file__).resolve().parents[3] / "docs" / "mapping.schema.json").read_text())
DEFS = SCHEMA["$defs"]


def test_schema_is_draft_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_top_level_keys_match() -> None:
    assert set(SCHEMA["properties"]) == set(compiler.TOP_KEYS)


def test_section_keys_match() -> None:
    assert set(DEFS["trackdrive"]["properties"]) == set(compiler.TRACKDRIVE_KEYS)
    assert set(DEFS["route"]["properties"]) == set(compiler.ROUTE_KEYS)
    assert set(DEFS["inbound"]["properties"]) == set(inbound.KEYS)
    assert set(DEFS["inbound"]["properties"]["auth"]["properties"]) == set(inbound.AUTH_KEYS)


def test_lead_parameters_match_trackdrive() -> None:
    expected = trackdrive.params_for("create_lead") - trackdrive.SECRET_PARAMS
    assert set(DEFS["lead"]["properties"]) == expected
