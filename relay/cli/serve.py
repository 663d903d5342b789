"""``relay serve``: gunicorn with the relay's config, receiving and delivering in one command."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import relay
from relay.settings import Settings

PACKAGED_CONFIG = "python:relay.runtime.gunicorn_conf"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="receive leads over HTTP and deliver them (gunicorn)")
    parser.add_argument("--bind", help="address to listen on, e.g. 0.0.0.0:8080 (default RELAY_BIND)")
    parser.add_argument("--workers", type=int, help="worker processes (default RELAY_WORKERS or 2)")
    parser.set_defaults(func=run)


def config_location() -> str:
    """RELAY_GUNICORN_CONF, else gunicorn.conf.py at the project root, else the packaged settings."""
    configured = Settings.from_env().gunicorn_conf
    if configured:
        return configured
    project_file = Path(relay.__file__).resolve().parent.parent / "gunicorn.conf.py"
    if project_file.is_file():
        return str(project_file)
    return PACKAGED_CONFIG


def gunicorn_argv(args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-m", "gunicorn", "-c", config_location()]
    if args.bind:
        argv += ["--bind", args.bind]
    if args.workers:
        argv += ["--workers", str(args.workers)]
    return argv


def run(args: argparse.Namespace) -> int:
    argv = gunicorn_argv(args)
    # exec: gunicorn becomes this process, so SIGTERM from a supervisor reaches it directly.
    os.execv(argv[0], argv)
    return 0  # not reached
