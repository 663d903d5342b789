"""CPU per Trackdrive call in the relay's process: TrackdriveClient against urllib3 and requests.

    python bench/client_cost.py [--calls 2000] [--rounds 5]

One thread sends the same create_lead call to the light stand-in (bench/standin.js, answering at
once) through TrackdriveClient (relay.delivery.wire), through urllib3's PoolManager as the client
called it before (no retries, no redirects, same headers, timeouts, JSON body and query), and
through a requests Session set up as the client used to be before that (one HTTPAdapter).
Rounds alternate the three; reported is the median over rounds of the thread's CPU per call.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import requests
import urllib3
from peers import install_node_red, start_standin
from requests.adapters import HTTPAdapter

from relay.delivery.client import USER_AGENT, TrackdriveClient
from relay.mapping.model import TrackdriveCall

ENV = {"TD_TOKEN": "bench-token-123"}
CALL = TrackdriveCall(action="create_lead", method="POST", path="/api/v1/leads",
                      query={"lead_token": "${TD_TOKEN}"},
                      body={"caller_id": "+15125550147", "email": "ana@example.com",
                            "data": {"first_name": "Ana", "last_name": "Diaz", "state": "TX"}},
                      secrets={"lead_token": "TD_TOKEN"})


def with_requests(base_url: str) -> callable:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=32, pool_maxsize=32, max_retries=0)
    session.mount("http://", adapter)
    session.trust_env = False

    def send(lead_id: str) -> None:
        url, query, body = CALL.resolve(ENV, base_url)
        answer = session.request(CALL.method, url, params=query, json=body, timeout=(3.05, 15.0),
                                 allow_redirects=False,
                                 headers={"Idempotency-Key": lead_id, "X-Relay-Lead-Id": lead_id,
                                          "User-Agent": USER_AGENT, "Accept": "application/json"})
        answer.text  # noqa: B018 - read as the old client did
    return send


def with_urllib3(base_url: str) -> callable:
    pools = urllib3.PoolManager(num_pools=8, maxsize=32)
    timeout = urllib3.Timeout(connect=3.05, read=15.0)

    def send(lead_id: str) -> None:
        url, query, body = CALL.resolve(ENV, base_url)
        answer = pools.request(CALL.method, f"{url}?{urlencode(query)}", body=json.dumps(body).encode(),
                               headers={"Idempotency-Key": lead_id, "X-Relay-Lead-Id": lead_id,
                                        "User-Agent": USER_AGENT, "Accept": "application/json",
                                        "Content-Type": "application/json"},
                               timeout=timeout, retries=False, redirect=False)
        answer.data.decode()
    return send


def with_client(base_url: str) -> callable:
    client = TrackdriveClient(base_url, env=ENV)
    return lambda lead_id: client.send(CALL, lead_id=lead_id)


def cpu_per_call_us(send: callable, calls: int) -> float:
    started = time.thread_time()
    for i in range(calls):
        send(f"L{i}")
    return (time.thread_time() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    install_node_red()
    with tempfile.TemporaryDirectory() as tmp:
        standin, url = start_standin(Path(tmp))
        try:
            senders = {"requests Session": with_requests(url), "urllib3 PoolManager": with_urllib3(url),
                       "TrackdriveClient (relay.delivery.wire)": with_client(url)}
            for send in senders.values():
                cpu_per_call_us(send, 200)  # warm-up
            results: dict[str, list[float]] = {name: [] for name in senders}
            for _ in range(args.rounds):
                for name, send in senders.items():
                    results[name].append(cpu_per_call_us(send, args.calls))
        finally:
            standin.stop()
    print("| client | CPU µs per call (median round) |\n|---|---:|")
    for name, values in results.items():
        print(f"| {name} | {statistics.median(values):.0f} |")


if __name__ == "__main__":
    main()
