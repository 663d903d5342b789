"""Helpers for the compiler tests: compile a mapping from inline YAML."""
from __future__ import annotations

import textwrap
from typing import Mapping

from relay.mapping.compiler import compile_source, is_error
from relay.mapping.model import Problem
from relay.mapping.source import Source

HEADER = """\
version: 1
trackdrive:
  lead_token: ${ACME_LEAD_TOKEN}
"""


def compile_text(text: str, *, env: Mapping[str, str] | None = None,
                 header: bool = True) -> tuple[Source | None, list[Problem]]:
    body = textwrap.dedent(text)
    return compile_source("acme", "acme.yaml", (HEADER if header else "") + body, env=env)


def source_of(text: str, **kwargs: object) -> Source:
    source, problems = compile_text(text, **kwargs)  # type: ignore[arg-type]
    errors = [str(problem) for problem in problems if is_error(problem)]
    assert source is not None, errors
    return source


def codes(problems: list[Problem]) -> list[str]:
    return [problem.code for problem in problems]
