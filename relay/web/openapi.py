"""``/openapi.json``: the relay's HTTP surface as an OpenAPI 3.1 document.

The document is plain data; only the list of example source names is filled in
per request, from the sources loaded right now.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

from flask import Blueprint, Response, current_app, jsonify

from relay.web.state import relay_state

bp = Blueprint("openapi", __name__)

JSON = "application/json"
ERROR_REF = {"$ref": "#/components/schemas/Error"}
LEAD_REF = {"$ref": "#/components/schemas/LeadAnswer"}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error the relay answers with; details name the field, path or rule.",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "stable, machine-readable",
                     "examples": ["unknown_source", "unauthorized", "lead_refused", "rate_limited"]},
            "message": {"type": "string"},
            "source": {"type": "string"},
            "field": {"type": "string"},
            "rule": {"type": "string"},
            "retry_after": {"type": "integer", "minimum": 1},
        },
        "additionalProperties": True,
    }},
}

LEAD_ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The stored lead: queued/retry (202), delivered or dropped (200), rejected (422).",
    "required": ["lead_id", "status", "source"],
    "properties": {
        "lead_id": {"type": "string"},
        "status": {"enum": ["queued", "retry", "delivered", "dead", "rejected", "dropped"]},
        "source": {"type": "string"},
        "duplicate": {"type": "boolean", "description": "a repeat inside the idempotency window"},
        "reason": {"type": "string", "description": "why a lead was dropped"},
        "error": {"type": "object", "description": "why the mapping refused the lead"},
        "trackdrive": {
            "type": "object", "description": "sync mode: Trackdrive's own answer",
            "properties": {"status": {"type": ["integer", "null"]}, "body": {}},
        },
    },
    "additionalProperties": True,
}

READINESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"enum": ["ready", "not_ready"]},
        "draining": {"type": "boolean"},
        "sources": {"type": "object", "additionalProperties": {"type": "object"}},
        "store": {"type": "object"},
    },
    "additionalProperties": True,
}

ANY_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
FORM_FIELDS: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}


def error_response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": ERROR_REF}}}
    if headers:
        response["headers"] = headers
    return response


def json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


REQUEST_ID_HEADER: dict[str, Any] = {
    "description": "The request's id: the vendor's X-Request-ID when sane, else a new one.",
    "schema": {"type": "string"},
}

RETRY_AFTER_HEADER: dict[str, Any] = {
    "description": "Seconds to wait before sending again.", "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}


def hook_responses(*, handshake: bool) -> dict[str, Any]:
    accepted: dict[str, Any] = {"description": "Accepted: stored, delivery pending.",
                                "content": {JSON: {"schema": LEAD_REF}}}
    ok_content: dict[str, Any] = {JSON: {"schema": LEAD_REF}}
    if handshake:
        ok_content["text/plain"] = {"schema": {"type": "string"},
                                    "description": "Meta subscription handshake: hub.challenge echoed"}
    return {
        "200": {"description": "Stored and settled (delivered in sync mode, dropped, or a repeat).",
                "content": ok_content},
        "201": json_response("Sync mode: delivered, Trackdrive's status passed on.", LEAD_REF),
        "202": accepted,
        "400": error_response("The body cannot be read (malformed JSON, form or multipart)."),
        "401": error_response("Missing or wrong token, basic credentials or signature."),
        "403": error_response("Client address not allowed, or wrong Meta verify token."),
        "404": error_response("No source with this name."),
        "405": error_response("Method not accepted.", {"Allow": {"schema": {"type": "string"}}}),
        "413": error_response("Body larger than the source's max_body_bytes."),
        "415": error_response("Content type the source does not read."),
        "414": {"description": "Request line (path plus query string) too long; answered by the "
                               "HTTP server before the relay sees the request.",
                "content": {"text/html": {"schema": {"type": "string"}}}},
        "422": json_response("The mapping refused the lead; it is stored as rejected.",
                             {"anyOf": [LEAD_REF, ERROR_REF]}),
        "429": error_response("The source is over its inbound rate limit.",
                              {"Retry-After": RETRY_AFTER_HEADER}),
        "503": error_response("The outbox cannot store the lead, or the source's secrets are unset; "
                              "retry later."),
    }


def hook_parameters() -> list[dict[str, Any]]:
    return [
        {"name": "X-Request-ID", "in": "header", "required": False, "schema": {"type": "string"}},
        {"name": "fields", "in": "query", "required": False, "style": "form", "explode": True,
         "description": "Any query parameters: the lead itself for GET sources, or a token.",
         "schema": FORM_FIELDS},
    ]


def hook_request_body() -> dict[str, Any]:
    return {"required": False, "content": {
        JSON: {"schema": {}},
        "application/x-www-form-urlencoded": {"schema": FORM_FIELDS},
        "multipart/form-data": {"schema": FORM_FIELDS},
        "text/plain": {"schema": {"type": "string"}},
    }}


def source_schema(names: list[str]) -> dict[str, Any]:
    # The sources loaded right now; any other name answers 404 (documented below).
    if not names:
        return {"type": "string", "minLength": 1}
    return {"type": "string", "enum": names}


def hook_operations(source_examples: list[str]) -> dict[str, Any]:
    source_param = {"name": "source", "in": "path", "required": True,
                    "description": "The mapping file's name without .yaml.",
                    "schema": source_schema(source_examples)}
    meta_params = [
        {"name": "hub.mode", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "Meta subscription handshake: 'subscribe'."},
        {"name": "hub.verify_token", "in": "query", "required": False, "schema": {"type": "string"}},
        {"name": "hub.challenge", "in": "query", "required": False, "schema": {"type": "string"}},
    ]
    write = {"parameters": hook_parameters(), "requestBody": hook_request_body(),
             "responses": hook_responses(handshake=False)}
    return {
        "parameters": [source_param],
        "get": {"summary": "Receive a lead sent as a query string, or answer Meta's handshake",
                "operationId": "receiveLeadGet", "tags": ["hooks"],
                "parameters": hook_parameters() + meta_params,
                "responses": hook_responses(handshake=True)},
        "post": {"summary": "Receive a lead", "operationId": "receiveLeadPost", "tags": ["hooks"], **write},
        "put": {"summary": "Receive a lead", "operationId": "receiveLeadPut", "tags": ["hooks"], **write},
    }


def admin_operations() -> dict[str, Any]:
    denied = error_response("Admin token missing or wrong (or, with none set, not a loopback client).")
    bad = error_response("A query parameter is invalid; the error names it.")
    security: list[dict[str, list[str]]] = [{"bearer": []}, {"adminToken": []}]
    return {
        "/admin/outbox": {"get": {
            "summary": "Recent leads, newest first", "operationId": "listOutbox", "tags": ["admin"],
            "security": security,
            "parameters": [
                {"name": "status", "in": "query", "schema": {"type": "string"}},
                {"name": "source", "in": "query", "schema": {"type": "string"}},
                {"name": "limit", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {"200": json_response("Leads", ANY_OBJECT), "400": bad, "401": denied}}},
        "/admin/outbox/counts": {"get": {
            "summary": "Lead counts by day, source and status", "operationId": "countOutbox",
            "tags": ["admin"], "security": security,
            "parameters": [{"name": "since", "in": "query", "schema": {"type": "string"}},
                           {"name": "until", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": json_response("Counts", ANY_OBJECT), "400": bad, "401": denied}}},
        "/admin/outbox/{lead_id}": {"get": {
            "summary": "One lead with its attempts", "operationId": "getLead", "tags": ["admin"],
            "security": security,
            "parameters": [{"name": "lead_id", "in": "path", "required": True, "schema": {"type": "string"}},
                           {"name": "body", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": json_response("The lead", ANY_OBJECT), "401": denied,
                          "404": error_response("No lead with this id.")}}},
    }


def document(source_names: Iterable[str] = (), served: Iterable[str] | None = None) -> dict[str, Any]:
    """The description; with ``served`` (the app's URL rules) only the paths the app has."""
    examples = sorted(source_names)
    doc = full_document(examples)
    if served is not None:
        shapes = {path_shape(rule) for rule in served}
        doc["paths"] = {path: item for path, item in doc["paths"].items() if path_shape(path) in shapes}
    return doc


def path_shape(path: str) -> str:
    """``/a/<b>`` and ``/a/{c}`` both become ``/a/{}``."""
    return re.sub(r"\{[^}]*\}|<[^>]*>", "{}", path)


def full_document(examples: list[str]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "trackdrive-relay", "version": "1",
                 "description": "Receives vendor lead webhooks, stores each in an outbox, "
                                "acknowledges, and delivers it to Trackdrive."},
        "paths": {
            "/hooks/{source}": hook_operations(examples),
            "/healthz": {"get": {"summary": "Liveness", "operationId": "healthz", "tags": ["ops"],
                                 "responses": {"200": json_response("The process answers", {
                                     "type": "object", "required": ["status"],
                                     "properties": {"status": {"const": "ok"}}})}}},
            "/readyz": {"get": {
                "summary": "Readiness: sources loaded, outbox writable, not draining",
                "description": "Without credentials only the verdict; with the admin token the reasons.",
                "operationId": "readyz", "tags": ["ops"],
                "responses": {"200": json_response("Ready", READINESS_SCHEMA),
                              "401": error_response("An admin token was given and is wrong."),
                              "503": json_response("Not ready (or draining)", READINESS_SCHEMA)}}},
            "/metrics": {"get": {
                "summary": "Prometheus metrics", "operationId": "metrics", "tags": ["ops"],
                "security": [{"bearer": []}, {"adminToken": []}],
                "responses": {"200": {"description": "Prometheus text format",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}},
                              "401": error_response("Admin token missing or wrong.")}}},
            "/openapi.json": {"get": {
                "summary": "This document", "operationId": "openapi", "tags": ["ops"],
                "responses": {"200": json_response("OpenAPI 3.1", ANY_OBJECT)}}},
            **admin_operations(),
        },
        "components": {
            "schemas": {"Error": ERROR_SCHEMA, "LeadAnswer": LEAD_ANSWER_SCHEMA},
            "headers": {"X-Request-ID": REQUEST_ID_HEADER},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "adminToken": {"type": "apiKey", "in": "header", "name": "X-Admin-Token"},
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    served = [rule.rule for rule in current_app.url_map.iter_rules()]
    return jsonify(document(relay_state().registry.names(), served))
