"""``relay sandbox``: serve the local Trackdrive stand-in."""
from __future__ import annotations

import argparse
import signal
import sys
from typing import Mapping

from relay.sandbox import Behaviour, VendorBehaviour, create_sandbox_app, make_sandbox_server, sandbox_state
from relay.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sandbox", help="serve a local stand-in for Trackdrive's leads API",
                                   description="Serve a local stand-in for Trackdrive's leads API, "
                                               "with injectable faults and a record at /_sandbox/received.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--delay-ms", type=int, default=0, help="answer every call after this delay")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of calls answered 5xx")
    parser.add_argument("--rate-429", type=float, default=0.0, help="share of calls answered 429")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds sent with 429")
    parser.add_argument("--timeout-rate", type=float, default=0.0,
                        help="share of calls held past the client's read timeout")
    parser.add_argument("--timeout-s", type=float, default=30.0, help="how long a timed-out call is held")
    parser.add_argument("--drop-rate", type=float, default=0.0,
                        help="share of calls whose connection is closed without an answer")
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible faults")
    parser.add_argument("--tokens", default=None,
                        help="comma-separated lead tokens to accept (default: any non-empty token)")
    vendors = parser.add_argument_group(
        "vendor APIs", "the Graph API (GET /{version}/{leadgen_id}) and HubSpot CRM "
                       "(GET /crm/v3/objects/contacts/{id}) stand-ins; also set at POST /_sandbox/vendors")
    vendors.add_argument("--vendor-delay-ms", type=int, default=0, help="answer every fetch after this delay")
    vendors.add_argument("--vendor-fail-rate", type=float, default=0.0, help="share of fetches answered 500")
    vendors.add_argument("--vendor-rate-429", type=float, default=0.0, help="share of fetches answered 429")
    vendors.add_argument("--vendor-retry-after", type=float, default=1.0, help="Retry-After seconds with 429")
    vendors.add_argument("--vendor-token-expired", action="store_true",
                         help="refuse every token as expired (Graph code 190/463, HubSpot 401)")
    vendors.add_argument("--graph-tokens", default=None,
                         help="comma-separated page tokens the Graph API accepts (default: any)")
    vendors.add_argument("--graph-app-secret-env", default=None, metavar="NAME",
                         help="check appsecret_proof with the app secret in this environment variable")
    vendors.add_argument("--hubspot-tokens", default=None,
                         help="comma-separated bearer tokens HubSpot accepts (default: any)")
    parser.set_defaults(func=run)


def vendors_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> VendorBehaviour:
    secret_env = args.graph_app_secret_env
    if secret_env and not env.get(secret_env):
        raise ValueError(f"--graph-app-secret-env: environment variable {secret_env} is not set")
    return VendorBehaviour().updated({
        "delay_ms": args.vendor_delay_ms, "fail_rate": args.vendor_fail_rate,
        "rate_429": args.vendor_rate_429, "retry_after": args.vendor_retry_after,
        "token_expired": args.vendor_token_expired, "graph_tokens": args.graph_tokens,
        "graph_app_secret": env.get(secret_env) if secret_env else None,
        "hubspot_tokens": args.hubspot_tokens})


def behaviour_from_args(args: argparse.Namespace) -> Behaviour:
    tokens = tuple(t for t in args.tokens.split(",") if t) if args.tokens else None
    return Behaviour(delay_ms=args.delay_ms, fail_rate=args.fail_rate, rate_429=args.rate_429,
                     retry_after=args.retry_after, timeout_rate=args.timeout_rate,
                     timeout_s=args.timeout_s, drop_rate=args.drop_rate, seed=args.seed,
                     tokens=tokens)


def run(args: argparse.Namespace) -> int:
    try:
        behaviour = behaviour_from_args(args)
        vendors = vendors_from_args(args, Settings.from_env().env)
    except ValueError as exc:
        print(f"relay sandbox: {exc}", file=sys.stderr)
        return 2
    app = create_sandbox_app(behaviour, vendors)
    server = make_sandbox_server(app, args.host, args.port)
    host, port = server.server_address[:2]
    if isinstance(host, bytes):  # typed str | bytes; an IP socket's host is always str
        host = host.decode()
    print(f"Trackdrive sandbox on http://{host}:{port} (record: /_sandbox/received, stats: /_sandbox/stats)",
          flush=True)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        sandbox_state(app).closing.set()
        server.server_close()
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)
