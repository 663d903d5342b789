"""The relay's Prometheus metrics, correct across every gunicorn worker.

Counters and histograms are process-local; with ``PROMETHEUS_MULTIPROC_DIR`` set
(the gunicorn config sets it before any worker starts) each worker writes them to
its own file and a scrape, whichever worker answers it, adds up every file.

The outbox gauges are not process values at all: they describe the shared
database, so they are read from the store at scrape time by :class:`OutboxCollector`.
Summing them across workers would multiply them by the worker count.
"""
from __future__ import annotations

import functools
import logging
import time
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from relay import outcomes
from relay.store.base import PendingStats, Store

log = logging.getLogger("relay.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Every outcome a vendor request can have; the label values of relay_requests_total.
REQUEST_OUTCOMES = outcomes.metric_labels()
DELIVERY_RESULTS = ("delivered", "retry", "dead")
# The label used for a source name the relay does not know: the path is chosen by
# whoever sends the request, so it must not become a label value.
UNKNOWN_SOURCE = "_unknown"

# Acknowledging is a parse, a map and one commit: milliseconds, with a tail on fsync.
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Receipt to delivery spans one HTTP call at best, retries over hours at worst.
DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
                    3600.0, 21600.0, 86400.0)

# Metrics live in their own registry so nothing else a process imports shows up in a scrape.
RELAY_REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter("relay_requests", "Vendor requests to /hooks/<source>, by how they ended.",
                   ["source", "outcome"], registry=RELAY_REGISTRY)
ACK_SECONDS = Histogram("relay_ack_seconds", "Time from receiving a vendor request to answering it.",
                        ["source"], buckets=ACK_BUCKETS, registry=RELAY_REGISTRY)
DELIVERY_ATTEMPTS = Counter("relay_delivery_attempts", "Calls to Trackdrive, by how each attempt settled.",
                            ["source", "result", "reason"], registry=RELAY_REGISTRY)
DELIVERY_LATENCY = Histogram("relay_delivery_latency_seconds",
                             "Time from receiving a lead to Trackdrive accepting it.",
                             ["source"], buckets=DELIVERY_BUCKETS, registry=RELAY_REGISTRY)
MAPPING_CRASHES = Counter("relay_mapping_crashes",
                          "Leads whose parser or mapping raised: stored as rejected (mapping_error) for replay.",
                          ["source"], registry=RELAY_REGISTRY)
MAPPING_RELOAD_ERRORS = Counter("relay_mapping_reload_errors",
                                "Mapping files that failed to load on a reload (the previous version stays).",
                                ["source"], registry=RELAY_REGISTRY)


def record_request(source: str, outcome: str, ack_s: float) -> None:
    _requests_series(source, outcome).inc()
    _ack_series(source).observe(max(0.0, ack_s))


def record_mapping_crash(source: str) -> None:
    MAPPING_CRASHES.labels(source=source).inc()


def record_attempt(source: str, result: str, reason: str = "", *, received_at: float | None = None,
                   settled_at: float | None = None) -> None:
    """One settled delivery attempt; a delivered one also records receipt-to-delivery time."""
    _attempts_series(source, result, reason_label(reason)).inc()
    if result == "delivered" and received_at is not None and settled_at is not None:
        _latency_series(source).observe(max(0.0, settled_at - received_at))


# The series of the per-lead metrics, each looked up once: ``labels()`` validates its
# arguments on every call. Bounded: sources are the loaded ones plus UNKNOWN_SOURCE, and
# outcomes, results and reason labels are small fixed sets.
@functools.cache
def _requests_series(source: str, outcome: str) -> Counter:
    return REQUESTS.labels(source=source, outcome=outcome)


@functools.cache
def _ack_series(source: str) -> Histogram:
    return ACK_SECONDS.labels(source=source)


@functools.cache
def _attempts_series(source: str, result: str, reason: str) -> Counter:
    return DELIVERY_ATTEMPTS.labels(source=source, result=result, reason=reason)


@functools.cache
def _latency_series(source: str) -> Histogram:
    return DELIVERY_LATENCY.labels(source=source)


def reason_label(reason: str) -> str:
    # Reasons such as "retries_exhausted:http_503" keep their kind; the label set stays small.
    return (reason or "").split(":", 1)[-1][:40]


class OutboxCollector(Collector):
    """The outbox gauges, read from the shared store when scraped."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        try:
            stats = self.store.pending_stats(now)
        except Exception as exc:  # a scrape must still answer, with the gauges missing
            log.warning("reading outbox statistics failed: %s", type(exc).__name__)
            return
        yield from outbox_gauges(stats, now)


def outbox_gauges(stats: PendingStats, now: float) -> Iterator[Metric]:
    oldest_age = 0.0 if stats.oldest_received_at is None else max(0.0, now - stats.oldest_received_at)
    yield GaugeMetricFamily("relay_outbox_pending", "Leads waiting for delivery (queued or retry).",
                            value=stats.pending)
    yield GaugeMetricFamily("relay_outbox_oldest_pending_age_seconds",
                            "Age of the oldest lead waiting for delivery; 0 when none waits.",
                            value=oldest_age)
    yield GaugeMetricFamily("relay_outbox_dead", "Dead letters: leads delivery gave up on.",
                            value=stats.dead)


def scrape(store: Store | None, multiprocess_dir: str = "") -> bytes:
    """The text exposition of every relay metric, whichever process is asked.

    ``multiprocess_dir``: where gunicorn's workers keep their metric files (RELAY settings'
    metrics_dir); empty in a single process, whose own registry is the whole story.
    """
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir:
        MultiProcessCollector(registry, path=multiprocess_dir)
    else:
        registry.register(_Forward(RELAY_REGISTRY))
    if store is not None:
        registry.register(OutboxCollector(store))
    return generate_latest(registry)


class _Forward(Collector):
    """A registry seen as one collector, so a scrape registry can include it without owning its metrics."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        return iter(self.source.collect())
