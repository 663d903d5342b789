"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: send it leads).

A load balancer polls ``/readyz`` without credentials and gets only the verdict
and its HTTP status; an admin gets the reasons, source by source.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, request

from relay.errors import RelayError, Unauthorized
from relay.intake.registry import SourceRegistry
from relay.web.admin import check_access
from relay.web.state import RelayState, relay_state

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    state = relay_state()
    access = check_access(state, request)
    if access.presented and not access.granted:
        raise Unauthorized(access.refusal, check="admin_token")
    report = readiness(state)
    body = report if access.granted else {"status": report["status"]}
    response = jsonify(body)
    response.status_code = 200 if report["status"] == "ready" else 503
    response.headers["Cache-Control"] = "no-store"
    return response


def readiness(state: RelayState) -> dict[str, Any]:
    sources = source_report(state.registry, state.env)
    store = store_report(state)
    draining = bool(getattr(state, "draining", False))
    loaded = any(details["version"] for details in sources.values())
    ready = loaded and store["writable"] and not draining
    return {"status": "ready" if ready else "not_ready", "sources": sources, "store": store,
            "draining": draining}


def source_report(registry: SourceRegistry, env: Any) -> dict[str, dict[str, Any]]:
    """Every source on disk: loaded ones with their version, broken ones with their problems."""
    report: dict[str, dict[str, Any]] = {}
    for name in registry.names():
        source = registry.get(name)
        missing = source.missing_env(env) if source is not None else []
        report[name] = {"version": getattr(source, "version", None) or None,
                        "problems": [problem.to_dict() for problem in registry.problems_for(name)],
                        "secrets_present": not missing, "missing_env": list(missing)}
    for problem in registry.problems:
        name = Path(problem.file).name.removesuffix(".yaml")
        if name not in report:
            report[name] = {"version": None, "problems": [p.to_dict() for p in registry.problems_for(name)],
                            "secrets_present": False, "missing_env": []}
    return report


def store_report(state: RelayState) -> dict[str, Any]:
    try:
        state.store.check_writable()
    except RelayError as error:
        return {"writable": False, "error": error.message}
    except Exception as error:  # readiness must answer whatever the backend raised
        return {"writable": False, "error": type(error).__name__}
    return {"writable": True, "error": None}
