"""CPU per Trackdrive call in the relay's process: TrackdriveClient against requests, side by side.

    python bench/client_cost.py [--calls 2000] [--rounds 5]

One thread sends the same create_lead call to the light stand-in (bench/standin.js, answering at
once) through TrackdriveClient (urllib3's pools) and through a requests Session set up as the
client used to be (one HTTPAdapter, no retries, same headers, timeouts, JSON body and query).
Rounds alternate the two; reported is the median over rounds of the thread's CPU per call.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import requests
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
            senders = {"requests Session": with_requests(url), "TrackdriveClient (urllib3)": with_client(url)}
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
