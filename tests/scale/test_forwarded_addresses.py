"""Behind nginx, the vendor's address comes from X-Forwarded-For, trusted only from the proxy."""
from __future__ import annotations

import http.client
import json

import pytest

from relay.store import open_store
from tests.scale.cluster import API_KEY, Cluster
from tests.scale.conftest import nginx_binary

VENDOR = "127.0.0.2"  # the one address allowlisted.yaml accepts
STRANGER = "127.0.0.3"


def post_from(source_addr: str, port: int, path: str, lead: dict, **headers: str) -> tuple[int, dict]:
    """POST from a chosen loopback address (Linux answers on all of 127.0.0.0/8)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source_addr, 0))
    try:
        conn.request("POST", path, body=json.dumps(lead),
                     headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


@pytest.fixture
def proxied(cluster: Cluster) -> Cluster:
    binary = nginx_binary()
    cluster.start_sandbox()
    cluster.start_relay(workers=1)
    cluster.start_relay(workers=1)
    cluster.start_proxy(binary)
    return cluster


def test_the_stored_client_address_is_the_vendor_not_the_proxy(proxied: Cluster) -> None:
    status, body = post_from(VENDOR, proxied.proxy_port, "/hooks/generic-json",
                             {"lead_id": "F-1", "phone": "(713) 555-0101"}, **{"X-Api-Key": API_KEY})
    assert status == 202, body
    store = open_store(proxied.database_url, migrate=False)
    try:
        lead = store.get(body["lead_id"])
    finally:
        store.close()
    assert lead is not None and lead.client_addr == VENDOR


def test_ip_allow_sees_the_forwarded_address(proxied: Cluster) -> None:
    lead = {"phone": "(713) 555-0102"}
    status, body = post_from(VENDOR, proxied.proxy_port, "/hooks/allowlisted", lead)
    assert status == 202, body
    status, body = post_from(STRANGER, proxied.proxy_port, "/hooks/allowlisted", lead)
    assert status == 403 and body["error"]["check"] == "ip_allow", body


def test_a_forged_forwarded_for_is_not_believed(proxied: Cluster) -> None:
    lead = {"phone": "(713) 555-0103"}
    # Through nginx: it appends the real peer, and the relay reads from the right.
    status, body = post_from(STRANGER, proxied.proxy_port, "/hooks/allowlisted", lead,
                             **{"X-Forwarded-For": VENDOR})
    assert status == 403, body
    # Straight to an instance: the peer is not a trusted proxy, so the header is ignored.
    status, body = post_from(STRANGER, proxied.relay_ports[0], "/hooks/allowlisted", lead,
                             **{"X-Forwarded-For": VENDOR})
    assert status == 403, body
