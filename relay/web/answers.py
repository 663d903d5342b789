"""The vendor's answer for a stored lead: the relay's JSON, or the source's own ``inbound.answer``."""
from __future__ import annotations

import json
import logging
from typing import Any

from flask import Response, jsonify

from relay import outcomes
from relay.intake.accept import Accepted
from relay.mapping import answers as source_answers
from relay.mapping.model import AnswerSpec, VendorAnswer
from relay.store.base import Lead

log = logging.getLogger("relay.web")

# The body an answer was built from, kept on the response so the request log need not parse it back.
ANSWER_ATTRIBUTE = "relay_answer"


def json_response(body: dict[str, Any], status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    setattr(response, ANSWER_ATTRIBUTE, body)
    return response


def answer_of(response: Response) -> dict[str, Any] | None:
    """The body of an answer built by :func:`json_response`; None for any other response."""
    return getattr(response, ANSWER_ATTRIBUTE, None)


def lead_answer(lead: Lead, *, duplicate: bool = False) -> Response:
    """The answer for a lead's current status (a repeat gets the first answer again)."""
    body: dict[str, Any] = {"lead_id": lead.id, "status": lead.status, "source": lead.source}
    status = outcomes.answer_status(lead.status)
    if lead.status == "rejected":
        body["error"] = dict(lead.error or {"code": "lead_refused", "message": "lead refused"})
        body["kept"] = True  # stored as rejected: replayable once the mapping is fixed
    elif lead.status == "dropped":
        body["reason"] = (lead.error or {}).get("reason", "")
    if duplicate:
        body["duplicate"] = True
    return json_response(body, status)


def trackdrive_body(raw: Any) -> Any:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def settled_answer(lead: Lead, status: str, trackdrive_status: int | None, raw_body: Any) -> Response:
    """Sync mode: Trackdrive's own answer, wrapped with the lead's id."""
    body = {"lead_id": lead.id, "status": status, "source": lead.source,
            "trackdrive": {"status": trackdrive_status, "body": trackdrive_body(raw_body)}}
    http_status = 200
    if status == "delivered" and trackdrive_status and 200 <= trackdrive_status < 300:
        http_status = trackdrive_status
    return json_response(body, http_status)


def accepted_answer(accepted: Accepted) -> Response:
    """One lead: the lead's answer. A batch: every lead's id and outcome, and one status for all.

    The whole request is 202 as soon as one of its leads was taken (stored for delivery now or
    earlier), so a vendor that resends on any non-2xx never resends leads already taken; the
    refused ones are kept for replay and listed with their reasons. 422 only when every lead
    was refused, 200 when the rest were dropped.
    """
    if not accepted.split and len(accepted.leads) == 1:
        only = accepted.leads[0]
        return lead_answer(only.lead, duplicate=not only.created)
    entries = [batch_entry(item.lead, duplicate=not item.created) for item in accepted.leads]
    overall = outcomes.batch_status([item.lead.status for item in accepted.leads])
    http_status = outcomes.BATCH_OUTCOMES[overall][1]
    batch_id = accepted.leads[0].lead.batch_id if accepted.leads else ""
    body = {"source": accepted.source, "batch_id": batch_id, "status": overall, "count": len(entries),
            "leads": entries}
    return json_response(body, http_status)


def batch_entry(lead: Lead, *, duplicate: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"lead_id": lead.id, "index": lead.batch_index, "status": lead.status}
    if lead.status == "rejected":
        entry["error"] = dict(lead.error or {"code": "lead_refused", "message": "lead refused"})
    elif lead.status == "dropped":
        entry["reason"] = (lead.error or {}).get("reason", "")
    if duplicate:
        entry["duplicate"] = True
    return entry


# --- a source's own answer (inbound.answer) ---

def vendor_answer(spec: VendorAnswer | None, accepted: Accepted, relay_answer: Response, *,
                  status: str | None = None) -> Response:
    """The source's answer for committed leads, or ``relay_answer`` when it has none for this outcome.

    The relay's JSON body stays attached, so the request log and metrics read the same outcome
    whichever answer the vendor gets. ``status`` overrides the leads' (a sync source's settled one).
    """
    built = answer_of(relay_answer)
    if spec is None or built is None or not accepted.leads:
        return relay_answer
    variables = answer_variables(accepted, built, status)
    chosen = choose(spec, variables)
    if chosen is None:
        return relay_answer
    try:
        text = source_answers.render(chosen, variables)
    except Exception:  # the leads are committed: a broken template must not turn into a 500
        log.exception("the answer template of source %s failed; sent the relay's JSON answer instead",
                      accepted.source, extra={"source": accepted.source, "event": "answer_template_failed"})
        return relay_answer
    return text_response(text, chosen, built)


def answer_variables(accepted: Accepted, built: dict[str, Any], status: str | None) -> dict[str, Any]:
    leads = [item.lead for item in accepted.leads]
    refused = next((lead for lead in leads if lead.status == "rejected"), None)
    return {
        "lead_id": leads[0].id, "lead_ids": [lead.id for lead in leads],
        "status": status or str(built.get("status", leads[0].status)), "source": accepted.source,
        "batch_id": leads[0].batch_id or leads[0].id, "count": len(leads),
        "duplicate": all(not item.created for item in accepted.leads),
        "error": dict((refused.error or {}) if refused is not None else {}),
    }


def choose(spec: VendorAnswer, variables: dict[str, Any]) -> AnswerSpec | None:
    """None: the source has no answer for this outcome, so the relay's own is sent."""
    if variables["status"] == "rejected":
        return spec.refused
    if variables["duplicate"]:
        return spec.duplicate or spec.accepted
    return spec.accepted


def text_response(text: str, spec: AnswerSpec, built: dict[str, Any] | None) -> Response:
    response = Response(text, status=spec.status, content_type=spec.content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    if built is not None:
        setattr(response, ANSWER_ATTRIBUTE, built)
    return response
