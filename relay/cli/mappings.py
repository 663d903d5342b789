"""``relay mappings lint|test``: check mapping files and run their test cases."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from relay.intake.testing import CaseResult, discover, run_cases
from relay.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("mappings", help="lint mapping files or run their test cases")
    commands = parser.add_subparsers(dest="mappings_command", required=True)

    lint = commands.add_parser("lint", help="report every problem in mapping files")
    lint.add_argument("paths", nargs="*", metavar="PATH", help="mapping files or directories")
    lint.add_argument("--no-env", action="store_true",
                      help="skip the check that every ${VARIABLE} is set in this environment")
    lint.set_defaults(func=run_lint)

    test = commands.add_parser("test", help="run the cases in <source>.test.yaml files")
    test.add_argument("paths", nargs="*", metavar="PATH", help="test files, mapping files or directories")
    test.add_argument("--update", action="store_true",
                      help="rewrite each case's expectation with what the mapping produces now")
    test.add_argument("--accept-kind-changes", action="store_true",
                      help="with --update, also rewrite a case whose outcome changed kind "
                           "(an expected refusal or error that is now a call, say)")
    test.set_defaults(func=run_test)


def default_paths(paths: Sequence[str]) -> list[str]:
    return list(paths) or [Settings.from_env().mappings_dir]


def run_lint(args: argparse.Namespace) -> int:
    from relay.intake import lint
    from relay.mapping.compiler import is_error

    paths = default_paths(args.paths)
    missing = [path for path in paths if not Path(path).exists()]
    if missing:
        print(f"no such file or directory: {', '.join(missing)}")
        return 1
    problems = lint.lint_paths(paths, env=None if args.no_env else Settings.from_env().env)
    for problem in problems:
        print(f"{problem.file}:{problem.line}:{problem.column}: {problem.message} [{problem.code}]")
    count = lint.counted_files(paths)
    errors = [problem for problem in problems if is_error(problem)]
    if errors:
        files = len({problem.file for problem in errors})
        print(f"{len(errors)} error(s) in {files} file(s); {count} mapping file(s) checked")
        return 1
    warnings = len(problems) - len(errors)
    print(f"{count} mapping file(s) OK" + (f", {warnings} warning(s)" if warnings else ""))
    return 0


def run_test(args: argparse.Namespace) -> int:
    paths = default_paths(args.paths)
    missing = [path for path in paths if not Path(path).exists()]
    if missing:
        print(f"no such file or directory: {', '.join(missing)}")
        return 1
    test_files = discover(paths)
    if not test_files:
        print(f"no test files (*.test.yaml) found in {', '.join(paths)}")
        return 1
    results = [result for test_file in test_files
               for result in run_cases(test_file, update=args.update,
                                       accept_kind_changes=args.accept_kind_changes)]
    for result in results:
        print_result(result)
    return print_summary(results)


def print_result(result: CaseResult) -> None:
    status = "UPDATED" if result.updated else "PASS" if result.passed else "FAIL"
    print(f"{status} {result.label}")
    if result.kind_change:
        print(f"CHANGED KIND {result.kind_change}" + ("" if result.updated else
                                                     " (not rewritten; pass --accept-kind-changes)"))
    if result.diff and not result.passed:
        print(_indent(result.diff))


def print_summary(results: list[CaseResult]) -> int:
    failed = sum(not result.passed for result in results)
    updated = sum(result.updated for result in results)
    summary = f"{len(results) - failed} passed, {failed} failed"
    if updated:
        summary += f", {updated} updated"
    print(summary)
    changed = sum(bool(result.kind_change) and not result.updated for result in results)
    return 1 if failed or changed else 0


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
