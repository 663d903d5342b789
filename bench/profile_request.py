"""The cost of one received lead on the request path, measured in-process.

    .venv/bin/python bench/profile_request.py [--requests 3000] [--top 30] [--sort tottime]
        [--threads 1] [--synchronous FULL] [--app relay|bare] [--plain]

Builds the relay app (shipped mappings, a fresh SQLite outbox, delivery off, JSON
logging at info written to /dev/null) and posts distinct JSON leads to
``/hooks/generic-json`` straight to the WSGI app, with an environ like the one gunicorn
builds: no network, server or test-client cost enters the figures. Prints:

* wall µs per request: includes waiting for the outbox commit (fsync);
* CPU µs per request: every thread of this process, the group-commit writer included;
  the figure that decides how many leads/s a worker can acknowledge;
* a cProfile table of a second run of the same size.

``--threads N`` posts from N threads at once, as gunicorn's request threads would (the
cProfile table then covers one of them); ``--synchronous NORMAL`` takes the disk sync out
of each commit, leaving the Python a lead costs. ``--plain`` only posts (warm-up included),
for counting instructions, which unlike time do not move with the machine's load.
``--app bare`` posts the same leads to ``bench/bare_app.py`` (Flask, one durable insert)
instead: what the framework and a commit alone cost, beside the relay's whole intake::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python bench/profile_request.py --plain --requests 200   # minus --requests 0

Figures vary with the machine's load: compare runs made one after the other.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import logging.config
import os
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
SOURCE_PATH = "/hooks/generic-json"
BARE_PATH = "/lead"
HEADERS = {"Content-Type": "application/json", "X-Api-Key": "example-key"}
WARMUP_REQUESTS = 300


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per measured run")
    parser.add_argument("--top", type=int, default=30, help="rows of the cProfile table")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumulative, ...)")
    parser.add_argument("--app", choices=("relay", "bare"), default="relay", help="the app posted to")
    parser.add_argument("--plain", action="store_true", help="post only: no timing, no profile")
    parser.add_argument("--threads", type=int, default=1, help="threads posting at once")
    parser.add_argument("--synchronous", default="FULL", help="the outbox's RELAY_SQLITE_SYNCHRONOUS")
    return parser.parse_args()


def prepare_environment(workdir: str, synchronous: str = "FULL") -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.stack import SHIPPED_SECRETS

    os.environ.update(SHIPPED_SECRETS)
    os.environ["RELAY_MAPPINGS_DIR"] = str(ROOT / "mappings")
    os.environ["RELAY_DATABASE_URL"] = f"sqlite:///{workdir}/relay.db"
    os.environ["RELAY_DELIVERY"] = "off"
    os.environ["RELAY_SQLITE_SYNCHRONOUS"] = synchronous
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = workdir


def log_to_devnull() -> None:
    # Logging stays on at info, as in production: formatting and masking are part of the cost.
    from relay import logs

    logging.config.dictConfig(logs.logging_config("info"))
    for handler in logging.getLogger().handlers:
        handler.stream = open(os.devnull, "w")  # type: ignore[attr-defined]  # noqa: SIM115


def lead_body(number: int) -> str:
    return json.dumps({
        "lead_id": f"x-{number}",
        "contact": {"first_name": "Ana", "phone": f"(512) 201-{number % 10000:04d}",
                    "email": f"a{number}@example.com"},
        "address": {"city": "Austin", "state": "Texas", "zip": "78701"},
        "consent": "yes",
    })


def wsgi_environ(body: bytes, path: str = SOURCE_PATH) -> dict[str, Any]:
    """What gunicorn hands the app for one lead from a client on this machine."""
    return {
        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "RAW_URI": path, "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000",
        "CONTENT_TYPE": HEADERS["Content-Type"], "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_USER_AGENT": "wrk", "HTTP_X_API_KEY": HEADERS["X-Api-Key"],
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def build_app(name: str, workdir: str, synchronous: str) -> tuple[Any, str]:
    """The WSGI app to post to and the path it takes leads at."""
    if name == "bare":
        os.environ["BARE_DB"] = f"{workdir}/bare.db"
        os.environ["BARE_SYNCHRONOUS"] = synchronous
        sys.path.insert(0, str(ROOT / "bench"))
        import bare_app

        return bare_app.app, BARE_PATH
    from relay.web import create_app

    return create_app(), SOURCE_PATH


def poster(app: Any, path: str) -> Callable[[int], None]:
    """Post ``count`` distinct leads straight to the WSGI app, as a server would."""
    numbers = itertools.count()  # next() on a count is atomic: threads never share a body

    def post(count: int) -> None:
        for _ in range(count):
            status, body = call(app, wsgi_environ(lead_body(next(numbers)).encode(), path))
            assert status.startswith("202"), body

    return post


def call(app: Any, environ: dict[str, Any]) -> tuple[str, bytes]:
    """The status line and body the app answers ``environ`` with."""
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        statuses.append(status)

    body = b"".join(app(environ, start_response))
    return statuses[0], body


def measure(post: Callable[[int], None], count: int, threads: int) -> tuple[float, float]:
    """(wall µs, CPU µs) per request, ``count`` requests shared by ``threads`` threads."""
    posters = [threading.Thread(target=post, args=(count // threads,)) for _ in range(threads)]
    wall, cpu = time.perf_counter(), time.process_time()
    for poster_thread in posters:
        poster_thread.start()
    for poster_thread in posters:
        poster_thread.join()
    done = count // threads * threads
    return ((time.perf_counter() - wall) / done * 1e6, (time.process_time() - cpu) / done * 1e6)


def profile(post: Callable[[int], None], count: int, top: int, sort: str) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(post, count)
    pstats.Stats(profiler).sort_stats(sort).print_stats(top)


def main() -> Any:
    args = parse_args()
    workdir = tempfile.mkdtemp(prefix="relay-profile-")
    prepare_environment(workdir, args.synchronous)
    log_to_devnull()
    app, path = build_app(args.app, workdir, args.synchronous)
    post = poster(app, path)
    post(WARMUP_REQUESTS)
    if args.plain:
        post(args.requests)
        return
    wall_us, cpu_us = measure(post, args.requests, args.threads)
    print(f"{args.requests} requests to {path} from {args.threads} thread(s), synchronous="
          f"{args.synchronous}: {wall_us:.0f} µs wall, {cpu_us:.0f} µs CPU per request")
    profile(post, args.requests, args.top, args.sort)


if __name__ == "__main__":
    main()
