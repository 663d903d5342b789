"""The naive relay the benchmarks compare against: receive JSON, map it by hand, POST it on, answer.

No outbox, no retries: if the stand-in is slow the vendor waits, if it fails the lead is lost.
Runs under gunicorn's sync workers (``gunicorn -w 2 bench.naive_relay:app``) with STANDIN_URL
pointing at the Trackdrive stand-in. Maps the same fields as mappings/generic-json.yaml.
"""
from __future__ import annotations

import os
import re

import requests
from flask import Flask, jsonify, request

STANDIN_URL = os.environ.get("STANDIN_URL", "http://127.0.0.1:8089")
API_KEY = os.environ.get("NAIVE_API_KEY", "example-key")
LEAD_TOKEN = os.environ.get("NAIVE_LEAD_TOKEN", "generic-json-token-6e5d")
STATES = {"texas": "TX", "california": "CA", "new york": "NY", "florida": "FL"}

app = Flask(__name__)
session = requests.Session()


def to_call(lead: dict) -> dict:
    contact, address = lead.get("contact") or {}, lead.get("address") or {}
    digits = re.sub(r"\D", "", str(lead.get("phone") or contact.get("phone") or ""))
    first = str(lead.get("first_name") or contact.get("first_name") or "").strip().title()
    last = str(lead.get("last_name") or contact.get("last_name") or "").strip().title()
    state = str(lead.get("state") or address.get("state") or "")
    return {"caller_id": f"+1{digits[-10:]}",
            "email": str(lead.get("email") or contact.get("email") or "").strip().lower(),
            "data": {"first_name": first, "last_name": last, "full_name": f"{first} {last}",
                     "state": STATES.get(state.lower(), state),
                     "zip_code": str(address.get("zip") or "")[:5],
                     "tcpa_consent": str(lead.get("consent")).lower() in ("yes", "true", "1"),
                     "address_city": address.get("city"), "utm_source": lead.get("utm_source"),
                     "lead_id": lead.get("lead_id")}}


@app.post("/hooks/generic-json")
def hook():
    if request.headers.get("X-Api-Key") != API_KEY:
        return jsonify({"error": "unauthorized"}), 401
    lead = request.get_json(silent=True)
    if not isinstance(lead, dict):
        return jsonify({"error": "a JSON object is needed"}), 400
    answer = session.post(f"{STANDIN_URL}/api/v1/leads", params={"lead_token": LEAD_TOKEN},
                          json=to_call(lead), timeout=(3.05, 15))
    if not answer.ok:
        return jsonify({"error": "trackdrive refused", "status": answer.status_code}), 502
    return jsonify({"status": "delivered"}), 202
