"""Mapping files the intake tests add to the shipped ones."""
from __future__ import annotations

BATCHY = """\
version: 1
description: several leads in one request
trackdrive:
  lead_token: ${BATCHY_LEAD_TOKEN}
split: $.leads[*]
lead:
  caller_id: {path: $.phone, transform: phone, required: true}
data:
  first_name: $.first_name
inbound:
  idempotency:
    key: $.id
    window: 1h
"""

# Served like .yaml: a second suffix must never mean a silently ignored file.
YML = """\
version: 1
trackdrive:
  lead_token: ${BATCHY_LEAD_TOKEN}
lead:
  caller_id: {path: $.phone, transform: phone, required: true}
"""

# A plain mapping: the defect is planted in its worker (crash_gunicorn_conf.py), not in the file.
CRASHY = YML

SECRETS = {"BATCHY_LEAD_TOKEN": "batchy-token-31f0a9"}
