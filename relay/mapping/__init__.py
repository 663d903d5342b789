"""Mapping vendor webhooks to Trackdrive calls, one YAML file per source.

This package is pure: it reads files and data, never the network or a database,
so the web app, the CLI and the tests all map leads the same way.
"""
from __future__ import annotations

from relay.mapping.lint import SOURCE_NAME, MappingInvalid, compile_file, load_source
from relay.mapping.model import Drop, InboundRequest, InboundSettings, MapOutcome, Problem, Refusal, TrackdriveCall
from relay.mapping.source import Source

__all__ = [
                                 "SOURCE_NAME",
                                 "Drop",
                                 "InboundRequest",
                                 "InboundSettings",
                                 "MapOutcome",
                                 "MappingInvalid",
                                 "Problem",
                                 "Refusal",
                                 "Source",
                                 "TrackdriveCall",
                                 "compile_file",
                                 "load_source",
]
