"""``relay outbox``: look into the outbox and act on it.

    relay outbox list [--status S] [--source X] [--limit N] [--json]
    relay outbox show ID [--reveal]
    relay outbox counts [--since YYYY-MM-DD] [--until YYYY-MM-DD] [--json]
    relay outbox report --by day [--tz ZONE] [--since YYYY-MM-DD] [--until YYYY-MM-DD] [--csv|--json]
    relay outbox retry [ID...] [--source X] [--all-dead]
    relay outbox replay [ID...] [--status rejected|dead] [--source X] [--dry-run]
    relay outbox purge --older-than 30d [--status delivered]
    relay outbox forget (--phone NUMBER | --email ADDRESS) [--json]

Every subcommand takes ``--database-url`` (default ``$RELAY_DATABASE_URL``).

``show`` masks personal data (phones, emails, names, addresses) everywhere it prints
it; ``--reveal`` prints it as stored and writes a ``pii_revealed`` log line to stderr
naming the lead and the OS user. Secrets stay masked either way.
"""
from __future__ import annotations

import argparse
import base64
import calendar
import datetime
import getpass
import json
import logging
import os
import re
import sys
import time
import zoneinfo
from dataclasses import asdict
from typing import Any, Callable, Iterable, TextIO
from urllib.parse import parse_qsl, urlencode

from relay import pii
from relay.errors import RelayError
from relay.logs import JsonFormatter
from relay.mapping.model import ENV_REF, MASK, TrackdriveCall
from relay.outcomes import LEAD_STATUSES
from relay.settings import Settings
from relay.store import open_store
from relay.store.base import Lead, Store

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
REPLAYABLE = ("rejected", "dead")
# The status a lead gets from mapping it again, by what the mapping returned.
ALL_ROWS = 1_000_000_000  # "no limit" for list()
DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}

Handler = Callable[[argparse.Namespace, Store, TextIO], int]


# --- argument parsing ---

def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("outbox", help="inspect, retry, replay and purge stored leads")
    parser.add_argument("--database-url", help="outbox URL (default $RELAY_DATABASE_URL)")
    commands = parser.add_subparsers(dest="outbox_command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS lets the option sit before or after the subcommand without one erasing the other.
    common.add_argument("--database-url", default=argparse.SUPPRESS,
                        help="outbox URL (default $RELAY_DATABASE_URL)")

    listing = commands.add_parser("list", parents=[common], help="newest leads first")
    listing.add_argument("--status", choices=LEAD_STATUSES)
    listing.add_argument("--source")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON array")
    listing.set_defaults(func=_runner(run_list))

    show = commands.add_parser("show", parents=[common], help="one lead with its attempts")
    show.add_argument("id", metavar="ID")
    show.add_argument("--reveal", action="store_true",
                      help="show phones, emails, names and addresses unmasked (the reveal is logged)")
    show.set_defaults(func=_runner(run_show))

    counts = commands.add_parser("counts", parents=[common],
                                 help="leads per UTC day, source and status")
    counts.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="first day, inclusive")
    counts.add_argument("--until", type=_day, metavar="YYYY-MM-DD", help="last day, inclusive")
    counts.add_argument("--json", action="store_true")
    counts.set_defaults(func=_runner(run_counts))

    report = commands.add_parser("report", parents=[common],
                                 help="reconciliation per source and day in a time zone (as the console's CSV)")
    report.add_argument("--by", choices=("day",), default="day", help="the period of a row (day)")
    report.add_argument("--tz", default="UTC", help="IANA time zone the days are in (default UTC)")
    report.add_argument("--since", type=_date, metavar="YYYY-MM-DD", help="first day, inclusive (default: 6 days ago)")
    report.add_argument("--until", type=_date, metavar="YYYY-MM-DD", help="last day, inclusive (default: today)")
    output = report.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="the console's CSV")
    output.add_argument("--json", action="store_true")
    report.set_defaults(func=_runner(run_report))

    retry = commands.add_parser("retry", parents=[common], help="make dead letters due again")
    retry.add_argument("ids", nargs="*", metavar="ID")
    retry.add_argument("--source")
    retry.add_argument("--all-dead", action="store_true", help="every dead letter")
    retry.set_defaults(func=_runner(run_retry))

    replay = commands.add_parser("replay", parents=[common],
                                 help="map stored requests again with the current mappings")
    replay.add_argument("ids", nargs="*", metavar="ID")
    replay.add_argument("--status", choices=REPLAYABLE)
    replay.add_argument("--source")
    replay.add_argument("--mappings", help="mappings directory (default $RELAY_MAPPINGS_DIR)")
    replay.add_argument("--dry-run", action="store_true", help="show the outcome, change nothing")
    replay.set_defaults(func=_runner(run_replay))

    purge = commands.add_parser("purge", parents=[common], help="delete old leads")
    purge.add_argument("--older-than", type=_duration, required=True, metavar="AGE",
                       help="e.g. 30d, 12h, 2w")
    purge.add_argument("--status", action="append", choices=LEAD_STATUSES,
                       help="repeatable; default delivered")
    purge.set_defaults(func=_runner(run_purge))

    forget = commands.add_parser("forget", parents=[common],
                                 help="erase every stored trace of one person (by phone or email)")
    person = forget.add_mutually_exclusive_group(required=True)
    person.add_argument("--phone", help="any spelling: +1 512 555 0147, (512) 555-0147, 5125550147")
    person.add_argument("--email")
    forget.add_argument("--json", action="store_true", help="one JSON object")
    forget.set_defaults(func=_runner(run_forget))


def _day(text: str) -> float:
    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%d")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, not {text!r}") from None


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, not {text!r}") from None


def _duration(text: str) -> float:
    match = DURATION.match(text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"expected an age such as 30d, 12h, 90m or 2w, not {text!r}")
    return float(match.group(1)) * UNIT_SECONDS[match.group(2)]


def _runner(handler: Handler) -> Callable[[argparse.Namespace], int]:
    """Open the outbox, run ``handler``, and turn failures into a message and exit code 1."""

    def run(args: argparse.Namespace) -> int:
        settings = Settings.from_env()
        url = getattr(args, "database_url", None) or settings.database_url
        try:
            store = open_store(url, synchronous=settings.sqlite_synchronous)
        except (ValueError, RelayError) as exc:
            return _fail(str(exc))
        try:
            return handler(args, store, sys.stdout)
        except RelayError as exc:
            return _fail(str(exc))
        finally:
            store.close()

    return run


def _fail(message: str) -> int:
    print(f"relay outbox: error: {message}", file=sys.stderr)
    return EXIT_FAILED


# --- list, show, counts ---

def run_list(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    leads = store.list(status=args.status, source=args.source, limit=args.limit)
    if args.json:
        _print_json([_summary(lead) for lead in leads], out)
        return EXIT_OK
    rows = [(lead.id, _iso(lead.received_at) or "", lead.source, lead.status, str(lead.attempts),
             "" if lead.response_status is None else str(lead.response_status))
            for lead in leads]
    _print_table(("ID", "RECEIVED", "SOURCE", "STATUS", "ATTEMPTS", "HTTP"), rows, out)
    return EXIT_OK


def run_show(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    lead = store.get(args.id)
    if lead is None:
        return _fail(f"no lead with id {args.id}")
    shown = _details(lead, _secret_query_params(lead.source, args))
    shown["attempt_log"] = [_attempt(settlement) for settlement in store.attempts(lead.id)]
    if args.reveal:
        log_reveal(lead.id)
    else:
        shown = masked_details(shown, lead.body)
    _print_json(shown, out)
    return EXIT_OK


def run_counts(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    until = None if args.until is None else args.until + 86_400  # the last day is inclusive
    counts = store.counts(since=args.since, until=until)
    if args.json:
        _print_json([asdict(count) for count in counts], out)
        return EXIT_OK
    rows = [(c.day, c.source, c.status, str(c.count)) for c in counts]
    _print_table(("DAY", "SOURCE", "STATUS", "COUNT"), rows, out)
    return EXIT_OK


def run_report(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    from relay.store.report import COLUMNS, report, to_csv

    try:
        zone = zoneinfo.ZoneInfo(args.tz).key
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return _usage(f"--tz must be an IANA time zone such as UTC or America/Chicago, not {args.tz!r}")
    last = args.until or datetime.datetime.now(zoneinfo.ZoneInfo(zone)).date()
    first = args.since or last - datetime.timedelta(days=6)
    if first > last:
        return _usage("--since must be on or before --until")
    rows = report(store, zone, first, last)
    if args.csv:
        out.write(to_csv(rows, zone))
    elif args.json:
        _print_json([{"day": row.day, "source": row.source, **row.values} for row in rows], out)
    else:
        _print_table(("DAY", "SOURCE", *(column.upper() for column in COLUMNS)),
                     [(row.day, row.source, *(str(row.values[c]) for c in COLUMNS)) for row in rows], out)
    return EXIT_OK


# --- retry, replay, purge ---

def run_retry(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    if not (args.ids or args.source or args.all_dead):
        return _usage("retry needs lead ids, --source or --all-dead")
    count = store.requeue(args.ids or None, source=args.source, status="dead", now=time.time())
    print(f"requeued {count} dead lead(s)"
          + (f" of {len(args.ids)} given" if args.ids else ""), file=out)
    return EXIT_OK


def run_replay(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    if not (args.ids or args.status):
        return _usage("replay needs lead ids or --status rejected|dead")
    leads, missing = _select(store, args)
    for lead_id in missing:
        print(f"{lead_id}: no such lead", file=out)
    mappings_dir = args.mappings or Settings.from_env().mappings_dir
    try:
        sources = load_sources(mappings_dir)
    except (ImportError, OSError) as exc:
        return _fail(f"cannot load the mappings in {mappings_dir}: {exc}")
    failed = bool(missing)
    for lead in leads:
        failed |= not _replay_one(store, lead, sources, args.dry_run, out)
    return EXIT_FAILED if failed else EXIT_OK


def run_purge(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    statuses = tuple(args.status or ("delivered",))
    count = store.purge(time.time() - args.older_than, statuses)
    print(f"purged {count} lead(s) with status {', '.join(statuses)}", file=out)
    return EXIT_OK


def run_forget(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    """Delete the leads naming this phone or email, with their attempts and dedupe keys."""
    gone = store.forget(phone=args.phone, email=args.email)
    who = pii.mask_phone(args.phone) if args.phone else pii.mask_email(args.email)
    if args.json:
        print(json.dumps({"person": who, "lead_ids": list(gone.lead_ids), "erased": gone.counts}), file=out)
        return EXIT_OK
    counts = ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in gone.counts.items()) or "nothing"
    print(f"forgot {who}: erased {counts}", file=out)
    for lead_id in gone.lead_ids:
        print(f"  {lead_id}", file=out)
    return EXIT_OK


def _usage(message: str) -> int:
    print(f"relay outbox: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _select(store: Store, args: argparse.Namespace) -> tuple[list[Lead], list[str]]:
    if not args.ids:
        return store.list(status=args.status, source=args.source, limit=ALL_ROWS), []
    found = {lead_id: store.get(lead_id) for lead_id in args.ids}
    leads = [lead for lead in found.values() if lead is not None
             and (args.status is None or lead.status == args.status)
             and (args.source is None or lead.source == args.source)]
    return leads, [lead_id for lead_id, lead in found.items() if lead is None]


def load_sources(mappings_dir: str) -> dict[str, Any]:
    """Every source the mappings directory defines (problems are reported by ``mappings lint``)."""
    from relay.intake.lint import load_directory

    sources, _problems = load_directory(mappings_dir)
    return dict(sources)


def _replay_one(store: Store, lead: Lead, sources: dict[str, Any], dry_run: bool,
                out: TextIO) -> bool:
    from relay.intake.replay import replay

    source = sources.get(lead.source)
    if source is None:
        print(f"{lead.id}: no mapping for source {lead.source!r}; left {lead.status}", file=out)
        return False
    result = replay(store, source, lead, dry_run=dry_run)
    if dry_run:
        print(f"{lead.id}: {result.before} -> {result.after} ({result.note}) [dry run]", file=out)
        return True
    if not result.changed:
        print(f"{lead.id}: {result.note}; left {lead.status}", file=out)
        return False
    print(f"{lead.id}: {result.before} -> {result.after} ({result.note})", file=out)
    return True


# --- presenting leads ---

def _summary(lead: Lead) -> dict[str, Any]:
    return {"id": lead.id, "source": lead.source, "status": lead.status,
            "received_at": _iso(lead.received_at), "attempts": lead.attempts,
            "next_attempt_at": _iso(lead.next_attempt_at),
            "response_status": lead.response_status, "delivered_at": _iso(lead.delivered_at)}


def _details(lead: Lead, secret_params: set[str]) -> dict[str, Any]:
    body, encoding = _body_text(lead.body)
    return {
        **_summary(lead), "request_id": lead.request_id, "method": lead.method,
        "content_type": lead.content_type, "query": _mask_query(lead.query, secret_params),
        "headers": lead.headers, "client_addr": lead.client_addr, "body": body,
        "body_encoding": encoding, "mapping_version": lead.mapping_version,
        "call": None if lead.call is None else masked_call(lead.call), "error": lead.error,
        "dedupe_key": lead.dedupe_key, "lease_owner": lead.lease_owner,
        "lease_until": _iso(lead.lease_until), "response_body": lead.response_body,
        "updated_at": _iso(lead.updated_at)}


# Fields that can hold personal data; the others are ids, times, statuses and counts.
PERSONAL_FIELDS = ("query", "headers", "call", "error", "dedupe_key", "response_body")


def masked_details(shown: dict[str, Any], body: bytes) -> dict[str, Any]:
    masked = {**shown, **{name: pii.mask_value(shown[name]) for name in PERSONAL_FIELDS}}
    masked["body"], masked["body_encoding"] = pii.mask_body(body), "utf-8"
    masked["attempt_log"] = [{**attempt, "response_body": pii.mask_value(attempt["response_body"])}
                             for attempt in shown["attempt_log"]]
    return masked


def log_reveal(lead_id: str) -> None:
    """Say on stderr, as a relay log line, who is about to see a lead's personal data."""
    log = logging.getLogger("relay.audit")
    # The command line sets up no logging: this line must be written whatever is configured.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    propagate, log.propagate = log.propagate, False
    try:
        log.warning("personal data of lead %s revealed", lead_id,
                    extra={"event": "pii_revealed", "lead_id": lead_id, "os_user": os_user(),
                           "via": "relay outbox show --reveal"})
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return f"uid:{os.getuid()}"


def _attempt(settlement: Any) -> dict[str, Any]:
    shown = asdict(settlement)
    shown["at"] = _iso(settlement.at)
    shown["next_attempt_at"] = _iso(settlement.next_attempt_at)
    return shown


def masked_call(raw: dict[str, Any]) -> dict[str, Any]:
    """The call with every secret parameter shown as its ``${ENV}`` reference or ``***``."""
    shown = TrackdriveCall.from_dict(raw).to_dict()
    for part in ("query", "body"):
        for param in shown.get("secrets") or {}:
            value = shown[part].get(param)
            if value is not None and not (isinstance(value, str) and ENV_REF.match(value)):
                shown[part][param] = MASK
    return shown


def _secret_query_params(source_name: str, args: argparse.Namespace) -> set[str]:
    """Query parameters that carry a source's shared token (best effort: needs its mapping)."""
    try:
        source = load_sources(getattr(args, "mappings", None)
                              or Settings.from_env().mappings_dir).get(source_name)
    except Exception:  # a broken mappings directory must not hide the lead
        return set()
    token = getattr(getattr(source, "inbound", None), "token", None)
    return {token.query} if token is not None and token.query else set()


def _mask_query(query: str, secret_params: set[str]) -> str:
    if not secret_params or not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(name in secret_params for name, _ in pairs):
        return query
    return urlencode([(name, MASK if name in secret_params else value) for name, value in pairs],
                     safe="*")


def _body_text(body: bytes) -> tuple[str, str]:
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), "base64"


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"


def _print_json(value: Any, out: TextIO) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False), file=out)


def _print_table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]], out: TextIO) -> None:
    rows = [header, *rows]
    widths = [max(len(row[i] or "") for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join((cell or "").ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
              file=out)
