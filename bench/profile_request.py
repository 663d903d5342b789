"""The cost of one received lead on the request path, measured in-process.

    .venv/bin/python bench/profile_request.py [--requests 3000] [--top 30] [--sort tottime]

Builds the relay app (shipped mappings, a fresh SQLite outbox, delivery off, JSON
logging at info written to /dev/null) and posts distinct JSON leads to
``/hooks/generic-json`` straight to the WSGI app, with an environ like the one gunicorn
builds: no network, server or test-client cost enters the figures. Prints:

* wall µs per request: includes waiting for the outbox commit (fsync);
* CPU µs per request: every thread of this process, the group-commit writer included;
  the figure that decides how many leads/s a worker can acknowledge;
* a cProfile table of a second run of the same size.

Figures vary with the machine's load: compare runs made one after the other.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging.config
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
SOURCE_PATH = "/hooks/generic-json"
HEADERS = {"Content-Type": "application/json", "X-Api-Key": "example-key"}
WARMUP_REQUESTS = 300


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per measured run")
    parser.add_argument("--top", type=int, default=30, help="rows of the cProfile table")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumulative, ...)")
    return parser.parse_args()


def prepare_environment(workdir: str) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.stack import SHIPPED_SECRETS

    os.environ.update(SHIPPED_SECRETS)
    os.environ["RELAY_MAPPINGS_DIR"] = str(ROOT / "mappings")
    os.environ["RELAY_DATABASE_URL"] = f"sqlite:///{workdir}/relay.db"
    os.environ["RELAY_DELIVERY"] = "off"
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = workdir


def log_to_devnull() -> None:
    # Logging stays on at info, as in production: formatting and masking are part of the cost.
    from relay import logs

    logging.config.dictConfig(logs.logging_config("info"))
    for handler in logging.getLogger().handlers:
        handler.stream = open(os.devnull, "w")  # type: ignore[attr-defined]  # noqa: SIM115


def lead_bodies() -> Iterator[str]:
    number = 0
    while True:
        yield json.dumps({
            "lead_id": f"x-{number}",
            "contact": {"first_name": "Ana", "phone": f"(512) 201-{number % 10000:04d}",
                        "email": f"a{number}@example.com"},
            "address": {"city": "Austin", "state": "Texas", "zip": "78701"},
            "consent": "yes",
        })
        number += 1


def wsgi_environ(body: bytes) -> dict[str, Any]:
    """What gunicorn hands the app for one lead from a client on this machine."""
    return {
        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": SOURCE_PATH, "QUERY_STRING": "",
        "RAW_URI": SOURCE_PATH, "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000",
        "CONTENT_TYPE": HEADERS["Content-Type"], "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_USER_AGENT": "wrk", "HTTP_X_API_KEY": HEADERS["X-Api-Key"],
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def poster() -> Callable[[int], None]:
    """Post ``count`` distinct leads straight to the WSGI app, as a server would."""
    from relay.web import create_app

    app = create_app()
    bodies = lead_bodies()
    answered: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answered.append(status)

    def post(count: int) -> None:
        for _ in range(count):
            answered.clear()
            chunks = app(wsgi_environ(next(bodies).encode()), start_response)
            body = b"".join(chunks)
            assert answered[0].startswith("202"), body

    return post


def measure(post: Callable[[int], None], count: int) -> tuple[float, float]:
    """(wall µs, CPU µs) per request."""
    wall, cpu = time.perf_counter(), time.process_time()
    post(count)
    return ((time.perf_counter() - wall) / count * 1e6, (time.process_time() - cpu) / count * 1e6)


def profile(post: Callable[[int], None], count: int, top: int, sort: str) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(post, count)
    pstats.Stats(profiler).sort_stats(sort).print_stats(top)


def main() -> Any:
    args = parse_args()
    prepare_environment(tempfile.mkdtemp(prefix="relay-profile-"))
    log_to_devnull()
    post = poster()
    post(WARMUP_REQUESTS)
    wall_us, cpu_us = measure(post, args.requests)
    print(f"{args.requests} requests to {SOURCE_PATH}: {wall_us:.0f} µs wall, {cpu_us:.0f} µs CPU per request")
    profile(post, args.requests, args.top, args.sort)


if __name__ == "__main__":
    main()
