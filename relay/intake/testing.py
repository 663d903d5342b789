"""Run a mapping's test cases: ``mappings/<source>.test.yaml``.

One runner serves ``relay mappings test`` and the pytest suite, so a case that
passes on a laptop passes in CI. A test file holds cases, each a request (a
``.http`` fixture or an inline body) and what the mapping must produce::

    cases:
      - name: full lead
        request: {file: fixtures/acme/lead.http}
        expect:
          call_subset: {body: {caller_id: "+15125550147"}}

Expectation kinds: ``call`` (the whole masked call), ``call_subset`` (every
key given must match, recursively), ``refusal``, ``drop`` and ``error`` (each
a subset of the outcome's fields). Paths inside a test file are relative to
the file. With ``update=True`` each case's expectation is rewritten to what
the mapping produces now, keeping its kind; a case expecting a refusal, a drop
or an error that now gives a call is only rewritten with
``accept_kind_changes=True``, and is reported either way.

The inbound side runs as the hook runs it when a case gives ``headers`` or
``sign`` (the signature check) and whenever the source takes a key in the body
(``inbound.auth.body_key``), with the test file's and the case's ``env``.
``sign: true`` asks the runner to sign the request as the vendor would, with the
first secret and the current time; ``sign: {age: 600}`` signs it that many
seconds ago (a stale timestamp).
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlencode, urlsplit

import yaml

from relay.errors import RelayError
from relay.intake import auth
from relay.intake.pipeline import Deferred, Draft, LeadOutcome, evaluate, map_lead
from relay.mapping.fetch import fetched_payload
from relay.mapping.httpfile import HttpFileError, guess_content_type, parse_http_file
from relay.mapping.model import Drop, InboundRequest, Refusal, TrackdriveCall

TEST_SUFFIX = ".test.yaml"
EXPECT_KINDS = ("call", "call_subset", "refusal", "drop", "error", "fetch", "leads")
REQUEST_KEYS = ("file", "method", "content_type", "body", "body_file", "query", "headers", "url", "sign")
CASE_KEYS = ("name", "request", "env", "fetched", "expect")
FILE_KEYS = ("mapping", "env", "cases")

# Which outcome each expectation kind is about.
OUTCOME_OF_KIND = {"call": "call", "call_subset": "call", "refusal": "refusal", "drop": "drop",
                   "error": "error", "fetch": "fetch", "leads": "leads"}
# What --update writes when the outcome changed kind: the fields that identify it.
DEFAULT_EXPECT = {"refusal": ("field", "rule"), "drop": ("reason",), "error": ("code",), "fetch": ("stage",),
                  "leads": ("leads",)}

Loader = Callable[..., Any]  # load_source(path, *, env=None) -> Source


# --- outcomes: what mapping one request gave, as plain data -------------------------------

@dataclass(frozen=True)
class Outcome:
    kind: str  # call | refusal | drop | error | crash
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.kind, self.kind: self.detail}


def outcome_of(source: Any, request: InboundRequest, fetched: Any = None, *,
               env: Mapping[str, str] | None = None) -> Outcome:
    """What the relay's intake makes of one request, as a value (the same code the hook runs).

    A request that becomes one lead gives that lead's outcome; a source that splits gives
    ``leads``, one outcome per lead. A defect in the mapping code is a ``crash``, which never
    matches an expectation. With ``fetched`` (what the vendor's API would answer) a lead of a
    source that fetches is mapped from it, as the delivery worker does; without it, its
    outcome is ``fetch``.
    """
    try:
        evaluation = evaluate(source, request, env=env)
    except RelayError as exc:
        return Outcome("error", _plain(exc.to_dict()["error"]))
    except Exception as exc:
        return Outcome("crash", {"type": type(exc).__name__, "message": str(exc)})
    outcomes = [_draft_outcome(_after_fetch(source, draft, fetched)) for draft in evaluation.drafts]
    if not evaluation.split and len(outcomes) == 1:
        return outcomes[0]
    return Outcome("leads", {"leads": [outcome.to_dict() for outcome in outcomes]})


def _after_fetch(source: Any, draft: Draft, fetched: Any) -> Draft:
    if fetched is None or not isinstance(draft.outcome, Deferred):
        return draft
    outcome, crash = map_lead(source, fetched_payload(fetched, draft.payload))
    return dataclasses.replace(draft, outcome=outcome, crash=crash)


def read_fetched(spec: Any, base_dir: Path) -> Any:
    """A case's ``fetched``: ``{file: response.json}`` or ``{json: {...}}`` inline."""
    if not isinstance(spec, Mapping) or len(spec) != 1 or next(iter(spec)) not in ("file", "json"):
        raise ValueError("'fetched' takes one of: file (a JSON file), json (the answer inline)")
    if "json" in spec:
        return spec["json"]
    return json.loads((base_dir / str(spec["file"])).read_text(encoding="utf-8"))


def _draft_outcome(draft: Draft) -> Outcome:
    if draft.crash is not None:
        return Outcome("crash", {"type": type(draft.crash).__name__, "message": str(draft.crash)})
    return outcome_of_result(draft.outcome)


def outcome_of_result(result: LeadOutcome) -> Outcome:
    if isinstance(result, TrackdriveCall):
        return Outcome("call", _plain(result.to_dict()))
    if isinstance(result, Refusal):
        return Outcome("refusal", _plain(dataclasses.asdict(result)))
    if isinstance(result, Drop):
        return Outcome("drop", _plain(dataclasses.asdict(result)))
    if isinstance(result, Deferred):
        return Outcome("fetch", _plain(result.to_dict()))
    return Outcome("crash", {"type": type(result).__name__, "message": "an unknown outcome"})


def _plain(value: Any) -> Any:
    """JSON-shaped data (tuples become lists), so it compares with what YAML loads."""
    return json.loads(json.dumps(value, default=str))


# --- results ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CaseResult:
    source: str
    name: str
    passed: bool
    diff: str = ""  # unified diff of expected vs actual, or why the case could not run
    updated: bool = False  # --update rewrote this case's expectation
    kind_change: str = ""  # "refusal -> call" when the outcome is now of another kind
    test_file: Path | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return f"{self.source}: {self.name}"


# --- discovery ----------------------------------------------------------------------------

def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Test files under the given paths: directories, test files, or mapping files with a sibling test."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(path.glob("*" + TEST_SUFFIX)))
        elif path.name.endswith(TEST_SUFFIX):
            found.append(path)
        elif path.suffix in (".yaml", ".yml"):
            sibling = path.with_name(path.stem + TEST_SUFFIX)
            if sibling.is_file():
                found.append(sibling)
    return list(dict.fromkeys(found))


def source_name_of(test_file: Path) -> str:
    return test_file.name[: -len(TEST_SUFFIX)] if test_file.name.endswith(TEST_SUFFIX) else test_file.stem


def case_names(test_file: Path) -> list[str]:
    """The names of the cases in a test file, for parametrizing; [] when it cannot be read."""
    document, problem = _read_test_file(test_file)
    if problem:
        return []
    return [_case_name(case, index) for index, case in enumerate(document.get("cases") or [])]


# --- running ------------------------------------------------------------------------------

def run_cases(test_file: Path, *, update: bool = False, accept_kind_changes: bool = False,
              loader: Loader | None = None) -> list[CaseResult]:
    """Run every case of one test file; with ``update`` rewrite the expectations in place."""
    test_file = Path(test_file)
    name = source_name_of(test_file)
    document, problem = _read_test_file(test_file)
    if problem:
        return [CaseResult(name, "(test file)", False, problem, test_file=test_file)]
    sources = _SourceCache(_mapping_path(test_file, document), loader or _default_loader(),
                           document.get("env") or {})
    results = [_run_case(case, index, test_file, sources, update, accept_kind_changes)
               for index, case in enumerate(document["cases"])]
    results.extend(_duplicate_name_results(results, name, test_file))
    if update and any(result.updated for result in results):
        _write_test_file(test_file, document)
    return results


def _run_case(case: Any, index: int, test_file: Path, sources: _SourceCache, update: bool,
              accept_kind_changes: bool) -> CaseResult:
    name = _case_name(case, index)
    problem = _case_problem(case)
    if problem:
        return CaseResult(sources.name, name, False, problem, test_file=test_file)
    source = sources.get(case.get("env") or {})
    if isinstance(source, str):
        return CaseResult(sources.name, name, False, source, test_file=test_file)
    env = sources.env_of(case.get("env") or {})
    try:
        request = build_request(case["request"], test_file.parent)
        checked = inbound_outcome(source, case["request"], request, env)
        fetched = read_fetched(case["fetched"], test_file.parent) if "fetched" in case else None
    except (OSError, HttpFileError, ValueError) as exc:
        return CaseResult(source.name, name, False, f"cannot build the request: {exc}", test_file=test_file)
    outcome = checked or outcome_of(source, request, fetched, env=env)
    kind, expected = next(iter(case["expect"].items()))
    passed = _matches(kind, expected, outcome)
    changed = kind_change(kind, outcome) if not passed else ""
    diff = "" if passed else _diff(kind, expected, outcome)
    if update and not passed and outcome.kind != "crash" and (not changed or accept_kind_changes):
        case["expect"] = _updated_expect(kind, expected, outcome)
        return CaseResult(source.name, name, True, diff, updated=True, kind_change=changed,
                          test_file=test_file)
    return CaseResult(source.name, name, passed, diff, kind_change=changed if update else "",
                      test_file=test_file)


def kind_change(kind: str, outcome: Outcome) -> str:
    """"refusal -> call" when a request that was refused (or dropped, or an error) now becomes a
    call: a rewrite must never turn a guard into a pass unnoticed. Empty otherwise."""
    before = OUTCOME_OF_KIND[kind]
    if before in ("call", "leads") or outcome.kind != "call":
        return ""
    return f"{before} -> {outcome.kind}"


# --- the inbound side: what the hook checks before mapping ---------------------------------

CASE_URL = "https://relay.test/hooks/{source}"  # the URL a case's request is taken to reach


def inbound_outcome(source: Any, spec: Mapping[str, Any], request: InboundRequest,
                    env: Mapping[str, str]) -> Outcome | None:
    """An ``error`` outcome when an inbound check refuses the request, None when all pass.

    Signs the request first when the case asks (``sign``). Other inbound answers (handshakes,
    custom answers) belong here too, each as one more check before mapping.
    """
    signing = auth.signing_spec(source.inbound)
    if signing is None or not ("headers" in spec or "sign" in spec):
        return None
    url = str(spec.get("url") or CASE_URL.format(source=source.name))
    parts = urlsplit(url)
    signed = auth.SignedRequest(method=request.method, url=url.split("?")[0], path=parts.path,
                                query=request.query, headers=CaseHeaders(request.headers), body=request.body)
    now = time.time()
    if spec.get("sign"):
        age = spec["sign"].get("age", 0) if isinstance(spec["sign"], Mapping) else 0
        made = auth.sign(signing, signed, env, now - float(age))
        signed = dataclasses.replace(signed, headers=CaseHeaders({**request.headers, **made}))
    try:
        auth.check_body(source.inbound, headers=signed.headers, body=request.body, env=env,
                        request=signed, now=now)
    except RelayError as exc:
        return Outcome("error", _plain(exc.to_dict()["error"]))
    return None


@dataclass(frozen=True)
class CaseHeaders:
    """A case's headers, read by name case-insensitively as a server reads them."""

    headers: Mapping[str, str]

    def get(self, key: str, /) -> str | None:
        wanted = key.lower()
        return next((value for name, value in self.headers.items() if name.lower() == wanted), None)


class _SourceCache:
    """One loaded source per distinct case environment; a load failure is kept as its message."""

    def __init__(self, mapping_path: Path, loader: Loader, file_env: Mapping[str, str]) -> None:
        self.mapping_path = mapping_path
        self.loader = loader
        self.file_env = {str(k): str(v) for k, v in file_env.items()}
        self.name = mapping_path.stem
        self._loaded: dict[tuple[tuple[str, str], ...], Any] = {}

    def env_of(self, case_env: Mapping[str, Any]) -> dict[str, str]:
        return {**self.file_env, **{str(k): str(v) for k, v in case_env.items()}}

    def get(self, case_env: Mapping[str, Any]) -> Any:
        env = self.env_of(case_env)
        key = tuple(sorted(env.items()))
        if key not in self._loaded:
            self._loaded[key] = self._load(env or None)
        return self._loaded[key]

    def _load(self, env: dict[str, str] | None) -> Any:
        if not self.mapping_path.is_file():
            return f"mapping file {self.mapping_path} not found"
        try:
            return self.loader(self.mapping_path, env=env)
        except Exception as exc:  # MappingInvalid carries .problems; anything else is shown as is
            problems = getattr(exc, "problems", None)
            if problems:
                return "the mapping does not load:\n" + "\n".join(f"  {p} [{p.code}]" for p in problems)
            return f"the mapping does not load: {exc}"


def _default_loader() -> Loader:
    from relay.mapping import load_source  # the compiler; imported late so this module stays light

    return load_source


def build_request(spec: Mapping[str, Any], base_dir: Path) -> InboundRequest:
    """The InboundRequest a case describes: a ``.http`` file, inline parts, or both (parts win)."""
    request = parse_http_file((base_dir / spec["file"]).read_bytes()) if "file" in spec else InboundRequest()
    changes: dict[str, Any] = {}
    if "body" in spec:
        changes["body"] = str(spec["body"]).encode("utf-8")
    if "body_file" in spec:
        changes["body"] = (base_dir / spec["body_file"]).read_bytes()
    if "query" in spec:
        query = spec["query"]
        changes["query"] = urlencode(query) if isinstance(query, Mapping) else str(query)
    if "method" in spec:
        changes["method"] = str(spec["method"]).upper()
    if "headers" in spec:
        changes["headers"] = {**request.headers, **{str(k): str(v) for k, v in spec["headers"].items()}}
    if "content_type" in spec:
        changes["content_type"] = str(spec["content_type"])
    elif "body" in changes and "file" not in spec:
        changes["content_type"] = guess_content_type(changes["body"])
    return dataclasses.replace(request, **changes)


# --- comparing ----------------------------------------------------------------------------

def _matches(kind: str, expected: Any, outcome: Outcome) -> bool:
    if OUTCOME_OF_KIND[kind] != outcome.kind:
        return False
    if kind == "call":
        return bool(_plain(expected) == outcome.detail)
    if kind == "leads":
        return _leads_match(expected, outcome.detail.get("leads") or [])
    return is_subset(_plain(expected), outcome.detail)


def _leads_match(expected: Any, actual: list[dict[str, Any]]) -> bool:
    """``leads:`` lists one single-kind expectation per lead, in order (call, call_subset, refusal...)."""
    if not isinstance(expected, list) or len(expected) != len(actual):
        return False
    for wanted, got in zip(expected, actual, strict=True):
        if not isinstance(wanted, dict) or len(wanted) != 1 or next(iter(wanted)) not in OUTCOME_OF_KIND:
            return False
        kind, detail = next(iter(wanted.items()))
        outcome = Outcome(str(got.get("outcome")), got.get(str(got.get("outcome"))) or {})
        if kind == "leads" or not _matches(kind, detail, outcome):
            return False
    return True


def is_subset(expected: Any, actual: Any) -> bool:
    """Every key given in ``expected`` is in ``actual`` with a matching value; lists match item by item."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and is_subset(value, actual[key]) for key, value in expected.items())
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(is_subset(e, a) for e, a in zip(expected, actual, strict=True)))
    return bool(expected == actual)


def _project(expected: Any, actual: Any) -> Any:
    """``actual`` cut down to the keys ``expected`` names, so a diff shows only what is checked."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {key: _project(value, actual[key]) for key, value in expected.items() if key in actual}
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [_project(e, a) for e, a in zip(expected, actual, strict=True)]
    return actual


def _diff(kind: str, expected: Any, outcome: Outcome) -> str:
    same_kind = OUTCOME_OF_KIND[kind] == outcome.kind
    shown = outcome.detail if kind == "call" or not same_kind else _project(_plain(expected), outcome.detail)
    expected_doc = {OUTCOME_OF_KIND[kind]: _plain(expected)}
    actual_doc = {outcome.kind: shown}
    lines = difflib.unified_diff(_pretty(expected_doc), _pretty(actual_doc), "expected", "actual", lineterm="")
    return "\n".join(lines)


def _pretty(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def _updated_expect(kind: str, expected: Any, outcome: Outcome) -> dict[str, Any]:
    if outcome.kind == "leads":
        return {"leads": [{item["outcome"]: item[item["outcome"]]} for item in outcome.detail["leads"]]}
    if OUTCOME_OF_KIND[kind] == outcome.kind:
        if kind == "call":
            return {"call": outcome.detail}
        projected = _project(_plain(expected), outcome.detail)
        if projected:
            return {kind: projected}
    if outcome.kind == "call":
        return {"call": outcome.detail}
    keys = DEFAULT_EXPECT[outcome.kind]
    return {outcome.kind: {key: outcome.detail[key] for key in keys if key in outcome.detail}}


# --- the test file ------------------------------------------------------------------------

def _read_test_file(test_file: Path) -> tuple[dict[str, Any], str]:
    try:
        document = yaml.safe_load(test_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return {}, f"cannot read {test_file}: {exc}"
    if not isinstance(document, dict) or not isinstance(document.get("cases"), list):
        return {}, f"{test_file}: expected a mapping with a 'cases' list"
    unknown = sorted(set(document) - set(FILE_KEYS))
    if unknown:
        return {}, f"{test_file}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(FILE_KEYS)})"
    return document, ""


def _mapping_path(test_file: Path, document: Mapping[str, Any]) -> Path:
    if document.get("mapping"):
        return test_file.parent / str(document["mapping"])
    return test_file.with_name(source_name_of(test_file) + ".yaml")


def _case_name(case: Any, index: int) -> str:
    if isinstance(case, dict) and case.get("name"):
        return str(case["name"])
    return f"case {index + 1}"


def _case_problem(case: Any) -> str:
    if not isinstance(case, dict):
        return "a case must be a mapping with name, request and expect"
    unknown = sorted(set(case) - set(CASE_KEYS))
    if unknown:
        return f"unknown case key(s) {', '.join(unknown)} (allowed: {', '.join(CASE_KEYS)})"
    request = case.get("request")
    if not isinstance(request, dict) or not request:
        return "'request' must be a mapping (file, or content_type/body/body_file/query/method/headers)"
    unknown = sorted(set(request) - set(REQUEST_KEYS))
    if unknown:
        return f"unknown request key(s) {', '.join(unknown)} (allowed: {', '.join(REQUEST_KEYS)})"
    if "sign" in request and not isinstance(request["sign"], (bool, dict)):
        return "'sign' is true, or a mapping like {age: 600} (seconds before now)"
    if "body" in request and "body_file" in request:
        return "give either 'body' or 'body_file', not both"
    expect = case.get("expect")
    if not isinstance(expect, dict) or len(expect) != 1 or next(iter(expect)) not in EXPECT_KINDS:
        return f"'expect' must hold exactly one of: {', '.join(EXPECT_KINDS)}"
    return ""


def _duplicate_name_results(results: list[CaseResult], source: str, test_file: Path) -> list[CaseResult]:
    seen: set[str] = set()
    duplicates: list[CaseResult] = []
    for result in results:
        if result.name in seen:
            duplicates.append(CaseResult(source, result.name, False, "two cases share this name",
                                         test_file=test_file))
        seen.add(result.name)
    return duplicates


def _write_test_file(test_file: Path, document: dict[str, Any]) -> None:
    """Rewrite the file, keeping its leading comment block (YAML dumping drops comments)."""
    text = test_file.read_text(encoding="utf-8")
    header = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        header.append(line)
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=10_000)
    test_file.write_text("".join(header) + body, encoding="utf-8")
