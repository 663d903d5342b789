"""The ``relay`` command. Each subcommand lives in its own module with a ``register``."""
from __future__ import annotations

import argparse
import importlib
import sys

from relay.settings import SettingsError

# Modules that add subcommands; each defines register(subparsers) and sets a `func` default.
COMMAND_MODULES = (
    "relay.cli.mappings",  # relay mappings lint|test
    "relay.cli.preview",   # relay preview SOURCE FILE
    "relay.cli.serve",     # relay serve
    "relay.cli.sandbox",   # relay sandbox
    "relay.cli.outbox",    # relay outbox list|show|counts|retry|replay|purge
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay", description="Lead-ingestion relay for Trackdrive.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:
        # A bad variable stops every command the same way, naming it and what it accepts.
        print(f"relay: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
