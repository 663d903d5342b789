"""``/hooks/<source>``: authenticate, read, map, commit, then acknowledge."""
from __future__ import annotations

import logging
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, Request, Response, g, request
from werkzeug.exceptions import MethodNotAllowed

from relay.delivery.outcome import Delivered, Failed
from relay.errors import BadRequest, RelayError, SourceMisconfigured, UnknownSource
from relay.intake import auth
from relay.intake.accept import DeliveryDesk, Intake
from relay.intake.accept import accept as accept_request
from relay.intake.addresses import client_address, forwarded_for
from relay.mapping import answers as source_answers
from relay.mapping.body import parse_request
from relay.mapping.model import Handshake, InboundRequest, InboundSettings
from relay.mapping.source import Source
from relay.store.base import Lead
from relay.web import answers, body
from relay.web.record import kept_headers, query_without
from relay.web.request_id import current_request_id
from relay.web.state import RelayState, relay_state

bp = Blueprint("hooks", __name__)
log = logging.getLogger("relay.web")


ACCEPTED_METHODS = ["GET", "POST", "PUT"]


@bp.route("/hooks/<source_name>", methods=ACCEPTED_METHODS)
def receive(source_name: str) -> Response:
    # One lookup of the context-local request: every proxy access costs a context lookup.
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    if req.method not in ACCEPTED_METHODS:  # Flask adds HEAD to GET routes; a HEAD is no lead
        raise MethodNotAllowed(valid_methods=ACCEPTED_METHODS)
    state = relay_state()
    source = find_source(state, source_name)
    raw_query = req.environ.get("QUERY_STRING", "")
    query_pairs = parse_qsl(raw_query, keep_blank_values=True, errors="replace") if raw_query else []
    if auth.is_meta_handshake(source.inbound, req.method, query_pairs):
        # Meta does not sign its subscription GET: the verify token is its only credential.
        return challenge_response(auth.meta_challenge(source.inbound, query_pairs, state.settings.env))
    state.limiter.check(source.name, source.inbound.rate_limit)
    handshakes = [item for item in source.inbound.handshakes if req.method in item.methods]
    raw_body = None
    if any(not item.auth for item in handshakes):
        # A handshake the mapping exempts from auth is answered before any check: read it first.
        raw_body = read_body(req, source.inbound)
        answer = handshake_answer(source, [item for item in handshakes if not item.auth],
                                  unchecked_request(req, raw_query, raw_body))
        if answer is not None:
            return answer
    inbound_request = authenticated_request(req, state, source, raw_query, query_pairs, raw_body)
    answer = handshake_answer(source, [item for item in handshakes if item.auth], inbound_request)
    if answer is not None:
        return answer
    return accept(state, source, inbound_request)


def read_body(req: Request, inbound: InboundSettings) -> bytes:
    body.check_declared_length(req.content_length, inbound.max_body_bytes, req.stream)
    return body.read_limited(req.stream, inbound.max_body_bytes, req.content_length)


def unchecked_request(req: Request, raw_query: str, raw_body: bytes) -> InboundRequest:
    return InboundRequest(method=req.method, content_type=req.environ.get("CONTENT_TYPE", ""), body=raw_body,
                          query=raw_query)


def handshake_answer(source: Source, candidates: list[Handshake], inbound_request: InboundRequest) -> Response | None:
    """The answer of the first handshake the request matches; None to treat it as leads."""
    if not candidates:
        return None
    try:
        payload = parse_request(inbound_request)
    except RelayError:
        return None  # not a handshake; as leads, the same body gets its 4xx
    handshake = next((item for item in candidates if item.matches(inbound_request.method, payload)), None)
    if handshake is None:
        return None
    variables = {"payload": payload, "source": source.name, "method": inbound_request.method}
    try:
        text = source_answers.render(handshake.answer, variables)
    except Exception as error:
        raise BadRequest(f"the handshake answer could not be rendered: {error}", source=source.name) from None
    return answers.text_response(text, handshake.answer, {"handshake": True, "source": source.name})


def authenticated_request(req: Request, state: RelayState, source: Source, raw_query: str,
                          query_pairs: list[tuple[str, str]], raw_body: bytes | None = None) -> InboundRequest:
    """The request as it will be stored, once every configured check has passed."""
    inbound = source.inbound
    headers = req.headers
    client_addr = client_address(req.remote_addr, forwarded_for(req.environ), state.settings.trusted_proxies)
    g.client_addr = client_addr  # the request log line reports the same address
    auth.check_before_body(inbound, client_addr=client_addr, headers=headers,
                           query_pairs=query_pairs, env=state.settings.env)
    if raw_body is None:
        raw_body = read_body(req, inbound)
    signed = None
    if auth.signing_spec(inbound) is not None:  # building the URL is not free: only when it is signed
        signed = auth.SignedRequest(method=req.method, url=req.base_url, path=req.path, query=raw_query,
                                    headers=headers, body=raw_body)
    auth.check_body(inbound, headers=headers, body=raw_body, env=state.settings.env, request=signed)
    token_parameter = inbound.token.query if inbound.token else None
    return InboundRequest(
        method=req.method, content_type=req.environ.get("CONTENT_TYPE", ""), body=raw_body,
        query=query_without(raw_query, token_parameter),
        headers=kept_headers(req.environ, inbound, read_headers(source)), client_addr=client_addr)


def read_headers(source: Source) -> tuple[str, ...]:
    key = source.idempotency
    return (key.header,) if key is not None and key.header else ()


def find_source(state: RelayState, name: str) -> Source:
    source = state.registry.get(name)
    if source is None:
        if state.registry.problems_for(name):
            raise SourceMisconfigured(f"the mapping for source {name} has errors; run 'relay mappings lint'",
                                      source=name)
        raise UnknownSource(f"no source named {name!r}", source=name)
    missing = source.missing_env(state.settings.env)
    if missing:
        # Fails closed: a source whose secret is unset would otherwise run open.
        raise SourceMisconfigured(f"environment variable {missing[0]} is not set",
                                  source=name, variable=missing[0], variables=list(missing))
    return source


def challenge_response(challenge: str) -> Response:
    response = Response(challenge, status=200, mimetype="text/plain")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def accept(state: RelayState, source: Source, inbound_request: InboundRequest) -> Response:
    intake = Intake(state.store, lease_s=state.settings.lease_s, desk=desk_of(state))
    accepted = accept_request(intake, source, inbound_request, request_id=current_request_id(),
                              env=state.settings.env)
    if source.inbound.mode == "sync" and not accepted.split and len(accepted.leads) == 1:
        only = accepted.leads[0]
        response = sync_answer(only.lead, accepted.deliveries.get(only.lead.id), source.inbound.sync_deadline_s)
        built = answers.answer_of(response) or {}
        return answers.vendor_answer(source.inbound.answer, accepted, response, status=built.get("status"))
    return answers.vendor_answer(source.inbound.answer, accepted, answers.accepted_answer(accepted))


def desk_of(state: RelayState) -> DeliveryDesk | None:
    dispatcher = state.dispatcher
    return dispatcher if dispatcher is not None and hasattr(dispatcher, "reserve") else None


def sync_answer(lead: Lead, future: Future[Any] | None, deadline_s: float) -> Response:
    outcome = wait_for_outcome(future, deadline_s)
    if isinstance(outcome, Delivered):
        return answers.settled_answer(lead, "delivered", outcome.status, outcome.body)
    if isinstance(outcome, Failed):
        return answers.settled_answer(lead, "dead", outcome.status, outcome.body)
    return answers.lead_answer(lead)


def wait_for_outcome(future: Future[Any] | None, deadline_s: float) -> Any:
    if future is None:
        return None
    try:
        return future.result(timeout=max(0.0, deadline_s))
    except FutureTimeout:
        return None
    except Exception:
        log.exception("delivery failed while a sync request waited; the lead stays in the outbox")
        return None
