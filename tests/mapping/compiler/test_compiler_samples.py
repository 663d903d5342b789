"""Real vendor samples mapped end to end through Source.map."""
from __future__ import annotations

from pathlib import Path

from relay.mapping import Refusal, TrackdriveCall
from relay.mapping.httpfile import parse_http_file
from relay.mapping.model import InboundRequest

from compiler_helpers import source_of

PAYLOADS = Path(__file__).resolve().parents[2] / "payloads"


def sample(name: str) -> InboundRequest:
    return parse_http_file((PAYLOADS / f"{name}.http").read_bytes())


def test_meta_graph_lead_with_pairs() -> None:
    source = source_of("""
        prepare:
          - pairs: {at: $.field_data, name: name, value: values}
          - unwrap_lists
        lead:
          caller_id: {path: $.field_data.phone_number, transform: phone, required: true}
          email: {path: $.field_data.email, transform: email}
        data:
          first_name: $.field_data.first_name
          campaign: $.campaign_name
        inbound:
          auth:
            hmac: {preset: meta, secret: "${META_APP_SECRET}"}
        """)
    call = source.map(sample("facebook_lead_graph_object"))
    assert isinstance(call, TrackdriveCall), call
    assert call.body["caller_id"].startswith("+1")
    assert call.body["data"]["campaign"] == "ACA Open Enrollment - TX"


def test_meta_leadgen_notification_refuses_for_want_of_a_phone() -> None:
    source = source_of("""
        lead:
          caller_id: {path: [$.phone_number, $.phone], transform: phone, required: true}
        """)
    refusal = source.map(sample("facebook_leadgen_webhook"))
    assert isinstance(refusal, Refusal)
    assert (refusal.source, refusal.field, refusal.rule) == ("acme", "caller_id", "required")


def test_typeform_answers_by_filter() -> None:
    source = source_of("""
        lead:
          caller_id:
            path: $.form_response.answers[?(@.type == 'phone_number')].phone_number
            transform: phone
            required: true
        data:
          utm_source: $.form_response.hidden.utm_source
        inbound:
          auth:
            hmac: {preset: typeform, secret: "${TYPEFORM_SECRET}"}
          idempotency:
            key: $.event_id
        """)
    request = sample("typeform_form_response")
    call = source.map(request)
    assert isinstance(call, TrackdriveCall), call
    assert call.body["caller_id"].startswith("+1")
    assert call.body["data"] == {"utm_source": "google"}
    assert source.idempotency_key(source.parse(request), request.headers) == "01JDR7K3V6Q2M8W4XN5T9B1C0F"


def test_leadspedia_query_string() -> None:
    source = source_of("""
        lead:
          caller_id: {path: [$.phone_cell, $.phone_home], transform: phone, required: true}
          email: {path: $.email_address, transform: email}
        data:
          first_name: $.first_name
          last_name: $.last_name
          zip: $.zip_code
        passthrough:
          exclude: [lp_campaign_key, lp_response]
        """)
    call = source.map(sample("leadspedia_get_querystring"))
    assert isinstance(call, TrackdriveCall), call
    assert call.body["caller_id"] == "+19565550149"
    assert call.body["data"]["last_name"] == "Nuñez"
    assert "lp_campaign_key" not in call.body["data"]
    assert "phone_home" not in call.body["data"]  # read by a simple path: not copied again
