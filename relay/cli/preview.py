"""``relay preview SOURCE FILE``: show what a mapping makes of one request, without sending it."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from relay.intake.files import MAPPING_SUFFIXES
from relay.intake.testing import Outcome, outcome_of
from relay.mapping.httpfile import HttpFileError, guess_content_type, parse_http_file
from relay.mapping.model import InboundRequest
from relay.settings import Settings

EXIT_CALL = 0
EXIT_NO_CALL = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("preview", help="map one request and print the Trackdrive call")
    parser.add_argument("source", metavar="SOURCE", help="a source name or the path of a mapping file")
    parser.add_argument("file", metavar="FILE", help="a .http request file or a raw body")
    parser.add_argument("--content-type", help="content type of a raw body (guessed when left out)")
    parser.add_argument("--mappings", help="mappings directory (default $RELAY_MAPPINGS_DIR or mappings)")
    parser.add_argument("--query", help="query string, without '?' (replaces the file's)")
    parser.add_argument("--fetched", metavar="JSON_FILE",
                        help="what the vendor's API answers, for a source that fetches (else: outcome fetch)")
    parser.set_defaults(func=run_preview)


def run_preview(args: argparse.Namespace) -> int:
    outcome = preview(args.source, Path(args.file), content_type=args.content_type,
                      mappings_dir=args.mappings, query=args.query,
                      fetched=Path(args.fetched) if args.fetched else None)
    print(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False))
    return EXIT_CALL if outcome.kind == "call" else EXIT_NO_CALL


def preview(source: str, file: Path, *, content_type: str | None = None,
            mappings_dir: str | None = None, query: str | None = None,
            fetched: Path | None = None) -> Outcome:
    mapping_path = resolve_mapping(source, mappings_dir)
    if not mapping_path.is_file():
        return _error("unknown_source", f"no mapping file for {source!r} (looked for {mapping_path})")
    try:
        request = read_request(file, content_type=content_type, query=query)
    except (OSError, HttpFileError, UnicodeDecodeError) as exc:
        return _error("bad_request_file", f"cannot read {file}: {exc}")
    answer = None
    if fetched is not None:
        try:
            answer = json.loads(fetched.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return _error("bad_fetched_file", f"cannot read {fetched} as JSON: {exc}")
    loaded = _load(mapping_path)
    if isinstance(loaded, Outcome):
        return loaded
    return outcome_of(loaded, request, answer)


def resolve_mapping(source: str, mappings_dir: str | None) -> Path:
    """A path when SOURCE looks like one, else ``<mappings dir>/<SOURCE>.yaml``."""
    as_path = Path(source)
    if as_path.suffix in (".yaml", ".yml") or os.sep in source or "/" in source:
        return as_path
    directory = Path(mappings_dir or Settings.from_env().mappings_dir)
    for suffix in MAPPING_SUFFIXES:
        if (directory / f"{source}{suffix}").is_file():
            return directory / f"{source}{suffix}"
    return directory / f"{source}.yaml"


def read_request(file: Path, *, content_type: str | None, query: str | None) -> InboundRequest:
    data = file.read_bytes()
    if file.suffix == ".http":
        request = parse_http_file(data)
    else:
        request = InboundRequest(content_type=content_type or guess_content_type(data), body=data)
    changes: dict[str, Any] = {}
    if content_type:
        changes["content_type"] = content_type
    if query is not None:
        changes["query"] = query.lstrip("?")
    return dataclasses.replace(request, **changes)


def _load(mapping_path: Path) -> Any:
    from relay.mapping import load_source

    try:
        return load_source(mapping_path)
    except Exception as exc:  # MappingInvalid: show every problem, as lint does
        problems = getattr(exc, "problems", None)
        if problems is None:
            return _error("mapping_invalid", str(exc))
        return _error("mapping_invalid", f"{mapping_path} does not load",
                      problems=[problem.to_dict() for problem in problems])


def _error(code: str, message: str, **details: Any) -> Outcome:
    return Outcome("error", {"code": code, "message": message, **details})
