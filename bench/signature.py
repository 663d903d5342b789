"""One signature check on a 2 KiB body, per scheme family (goal: ≤ 20 µs median).

    .venv/bin/python bench/signature.py

Times ``relay.intake.auth.check_signature`` as the hook calls it: read the header,
check the timestamp, compute the expected signature for each secret, compare.
"""
from __future__ import annotations

import statistics
import time

from relay.intake.auth import SignedRequest, check_signature, sign
from relay.mapping.signatures import PRESETS, SignatureSpec

BODY = (b'{"phone": "+15125550147", "first_name": "Ana", "notes": "' + b"x" * 2000)[:2045] + b'"}\n'
ENV = {"S": "whsec_bGl2ZS1zaWduaW5nLWtleS0wMTIzNDU2Nzg5"}
ROUNDS, PER_ROUND = 31, 2000


class Headers(dict):  # type: ignore[type-arg]
    def get(self, key, default=None):  # type: ignore[no-untyped-def, override]
        return super().get(key.lower(), default)


def median_us(preset: str) -> float:
    spec = SignatureSpec(secret_envs=("S",), **PRESETS[preset])
    now = time.time()
    plain = SignedRequest("POST", "https://relay.example.com/hooks/x", "/hooks/x", "", Headers({"webhook-id": "m"}),
                          BODY)
    headers = Headers({"webhook-id": "m", **{k.lower(): v for k, v in sign(spec, plain, ENV, now).items()}})
    request = SignedRequest(plain.method, plain.url, plain.path, "", headers, BODY)
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(PER_ROUND):
            check_signature(spec, request, ENV, now)
        rounds.append((time.perf_counter() - started) / PER_ROUND * 1e6)
    return statistics.median(rounds)


def main() -> None:
    print(f"body: {len(BODY)} bytes; {ROUNDS} rounds of {PER_ROUND} checks; median of the rounds")
    print("| preset | median µs per check |")
    print("|---|---:|")
    for preset in ("github", "shopify", "hubspot_v1", "slack", "stripe", "standard_webhooks", "hubspot_v3"):
        print(f"| {preset} | {median_us(preset):.1f} |")


if __name__ == "__main__":
    main()
