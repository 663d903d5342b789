"""The mapping playground: a pasted body (or ``.http`` request) through a source's mapping.

It runs what ``relay preview`` runs (:func:`relay.intake.testing.outcome_of`, the
hook's own pipeline): nothing is stored, nothing is sent. The mapping is a loaded
source or a pasted one; the result is shown with personal data masked.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

from flask import render_template, request

from relay.errors import PayloadTooLarge
from relay.intake.testing import Outcome, outcome_of
from relay.mapping.compiler import compile_source
from relay.mapping.httpfile import HttpFileError, guess_content_type, parse_http_file
from relay.mapping.model import InboundRequest
from relay.pii import mask_value
from relay.web.console import bp
from relay.web.state import relay_state

MAX_INPUT_BYTES = 1024 * 1024
HTTP_METHODS = ("GET ", "POST ", "PUT ", "PATCH ")


@bp.route("/playground", methods=["GET", "POST"])
def playground() -> str:
    state = relay_state()
    form = {name: request.form.get(name, "") for name in ("source", "mapping", "body", "content_type", "query")}
    form["source"] = form["source"] or request.args.get("source", "")
    result: dict[str, Any] | None = None
    if request.method == "POST":
        if (request.content_length or 0) > MAX_INPUT_BYTES:
            raise PayloadTooLarge(f"the playground takes at most {MAX_INPUT_BYTES // 1024} KiB", field="body")
        outcome = try_mapping(form)
        result = {"kind": outcome.kind, "text": json.dumps(mask_value(outcome.to_dict()), indent=2,
                                                          ensure_ascii=False, sort_keys=True)}
    return render_template("console/playground.html", form=form, result=result,
                           sources=sorted(state.registry.names()))


def try_mapping(form: dict[str, str]) -> Outcome:
    source = chosen_source(form)
    if isinstance(source, Outcome):
        return source
    try:
        inbound = pasted_request(form)
    except (HttpFileError, UnicodeDecodeError, ValueError) as exc:
        return Outcome("error", {"code": "bad_request_file", "message": f"cannot read the request: {exc}"})
    return outcome_of(source, inbound)


def chosen_source(form: dict[str, str]) -> Any:
    if form["mapping"].strip():
        source, problems = compile_source("playground", "pasted mapping", form["mapping"])
        if source is None:
            return Outcome("error", {"code": "mapping_invalid", "message": "the pasted mapping does not load",
                                     "problems": [problem.to_dict() for problem in problems]})
        return source
    source = relay_state().registry.get(form["source"])
    if source is None:
        return Outcome("error", {"code": "unknown_source",
                                 "message": f"pick a loaded source or paste a mapping (not {form['source']!r})"})
    return source


def pasted_request(form: dict[str, str]) -> InboundRequest:
    """A whole ``.http`` request when the text starts with a method and a path, else a raw body."""
    text = form["body"].replace("\r\n", "\n")
    data = text.encode("utf-8")
    if text.lstrip().upper().startswith(HTTP_METHODS):
        inbound = parse_http_file(text.lstrip().encode("utf-8"))
    else:
        inbound = InboundRequest(content_type=form["content_type"].strip() or guess_content_type(data), body=data)
    query = form["query"].strip().lstrip("?")
    if query:
        inbound = dataclasses.replace(inbound, query=query)
    return inbound
