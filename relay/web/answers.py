"""The vendor's answer for a stored lead."""
from __future__ import annotations

import json
from typing import Any

from flask import Response, jsonify

from relay import outcomes
from relay.intake.accept import Accepted
from relay.store.base import Lead

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
