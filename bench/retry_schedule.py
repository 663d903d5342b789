"""Retry schedules side by side: speed to call under random failures, calls per lead in an outage.

    python bench/retry_schedule.py [--leads 2000] [--fail-rate 0.3] [--outage-minutes 60] [--seed 1]

A simulation on a virtual clock, driven by the relay's own RetryPolicy and circuit breaker
(relay.delivery.retry, relay.delivery.breaker) exactly as the dispatcher uses them: a lead the
breaker pauses is put back untouched (no attempt spent), every other call's outcome goes to the
breaker and a failure is retried after the policy's delay. Leads arrive over 200 s.

Random failures: each call fails with --fail-rate. Goal: 99.9% delivered within 2 minutes of
receipt. Outage: Trackdrive fails every call for --outage-minutes; goal: no more calls per lead
than the old schedule makes.
"""
from __future__ import annotations

import argparse
import heapq
import logging
import random
from dataclasses import dataclass
from typing import Callable

from relay.delivery.breaker import Breakers, BreakerSettings
from relay.delivery.outcome import Delivered, RetryLater
from relay.delivery.retry import DEFAULT_DELAYS, RetryPolicy

OLD_DELAYS = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 10800.0, 21600.0, 43200.0, 86400.0)
CALL_S = 0.2  # one Trackdrive call, start to answer
ARRIVAL_S = 200.0
TARGET = "https://trackdrive.example"


@dataclass
class Result:
    delivered_within_2min: float
    p999_s: float
    worst_s: float
    dead: int
    calls_per_lead: float
    max_calls: int


def simulate(delays: tuple[float, ...], leads: int, fail: Callable[[float, random.Random], bool],
             seed: int) -> Result:
    rng = random.Random(seed)
    policy = RetryPolicy(delays=delays, jitter=0.2)
    clock = [0.0]
    breakers = Breakers(BreakerSettings(), clock=lambda: clock[0])
    due = [(i * ARRIVAL_S / leads, i) for i in range(leads)]
    heapq.heapify(due)
    received = {i: at for at, i in due}
    attempts = dict.fromkeys(range(leads), 0)
    took: dict[int, float] = {}
    dead = 0
    while due:
        now, lead = heapq.heappop(due)
        clock[0] = now
        paused_until = breakers.admit(TARGET)
        if paused_until is not None:
            heapq.heappush(due, (paused_until, lead))
            continue
        attempts[lead] += 1
        clock[0] = now + CALL_S
        failed = fail(now, rng)
        outcome = RetryLater("server_error", 503, "") if failed else Delivered(200, "")
        breakers.record(TARGET, outcome)
        if not failed:
            took[lead] = now + CALL_S - received[lead]
            continue
        delay = policy.next_delay(attempts[lead], rand=rng.random)
        if delay is None:
            dead += 1
            continue
        heapq.heappush(due, (now + CALL_S + delay, lead))
    times = sorted(took.values()) + [float("inf")] * dead
    return Result(sum(1 for t in times if t <= 120) / leads, times[int(len(times) * 0.999) - 1], times[-1], dead,
                  sum(attempts.values()) / leads, max(attempts.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--fail-rate", type=float, default=0.3)
    parser.add_argument("--outage-minutes", type=float, default=60)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the breaker announces every change of state
    outage_s = args.outage_minutes * 60

    def random_failures(now: float, rng: random.Random) -> bool:
        return rng.random() < args.fail_rate

    def outage(now: float, rng: random.Random) -> bool:
        return now < outage_s

    print(f"{args.leads} leads; random failures {args.fail_rate:.0%}; outage {args.outage_minutes:g} min")
    print(f"{'schedule':<8} {'scenario':<16} {'<=2min':>8} {'p99.9':>9} {'worst':>9} {'dead':>5} "
          f"{'calls/lead':>10} {'max':>4}")
    for label, delays in (("old", OLD_DELAYS), ("new", DEFAULT_DELAYS)):
        for scenario, fail in (("random failures", random_failures), ("outage", outage)):
            r = simulate(delays, args.leads, fail, args.seed)
            print(f"{label:<8} {scenario:<16} {r.delivered_within_2min:>8.2%} {r.p999_s:>8.1f}s {r.worst_s:>8.1f}s "
                  f"{r.dead:>5} {r.calls_per_lead:>10.2f} {r.max_calls:>4}")
    print("delays old:", ", ".join(f"{d:g}" for d in OLD_DELAYS))
    print("delays new:", ", ".join(f"{d:g}" for d in DEFAULT_DELAYS))


if __name__ == "__main__":
    main()
