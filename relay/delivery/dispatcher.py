"""Moves leads from the outbox to Trackdrive: a poller, ``concurrency`` slots, two ways to send.

Two ways in: the web layer reserves a slot (:meth:`Dispatcher.reserve`), stores a new
lead already leased to this dispatcher and hands it over (:meth:`Dispatcher.deliver_leased`)
so it goes out at once; the poller claims whatever else is due (retries, leases that
expired, leads stored while every slot was taken).

Two ways out. Evented (the relay's default): the call goes to the worker's one
:class:`relay.delivery.sender.Sender` loop, and one settler thread records the answers of
each turn of that loop in one write. A lead to fetch first, a send the rate limiter paces, and
every lead of a dispatcher built without ``evented`` go to a pool thread that sends and settles
it alone. Every lead is leased before it is sent and settled after, so a crash or a stop never
loses one: an unsettled lease just expires and the lead is due again.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import replace
from typing import Callable

from relay import metrics
from relay.delivery.breaker import Breakers, BreakerSettings, base_url_key
from relay.delivery.client import Prepared, TrackdriveClient
from relay.delivery.outcome import Delivered, Failed, Outcome, RetryLater
from relay.delivery.ratelimit import TokenBucket
from relay.delivery.resolve import LeadResolver, Resolution, Resolved
from relay.delivery.retry import RetryPolicy
from relay.delivery.sender import Exchange, Finished, Sender
from relay.delivery.settler import Sent, Settler
from relay.delivery.wire import WireError
from relay.mapping.model import TrackdriveCall
from relay.store.base import Lead, Settlement, Store

log = logging.getLogger("relay.delivery")

MAX_STORE_BACKOFF_S = 30.0
# A settle is retried at most this far apart while the store is away: the lease is still
# ours, and the first write after the store returns must be ours, before pollers (which
# back off much further after failures) find the lease expired and send the lead again.
MAX_SETTLE_BACKOFF_S = 1.0
SETTLE_LOG_EVERY = 30  # tries between two warnings while a settle keeps failing


class Dispatcher:
    def __init__(self, store: Store, client: TrackdriveClient, policy: RetryPolicy, *, owner: str,
                 concurrency: int = 16, rate_per_s: float = 0.0, lease_s: float = 60.0,
                 poll_interval_s: float = 1.0, clock: Callable[[], float] = time.time,
                 limiter: TokenBucket | None = None, breakers: Breakers | None = None,
                 resolver: LeadResolver | None = None, evented: bool = False) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.store = store
        self.client = client
        self.policy = policy
        self.owner = owner
        self.concurrency = concurrency
        self.lease_s = lease_s
        self.poll_interval_s = poll_interval_s
        self.clock = clock
        self.limiter = limiter if limiter is not None else TokenBucket(rate_per_s)
        # Off unless given: a breaker needs settings from the environment (see relay.runtime.delivery).
        self.breakers = breakers if breakers is not None else Breakers(BreakerSettings(failures=0))
        self.resolver = resolver  # maps leads stored as fetching; None: no source fetches
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="relay-delivery")
        self._lock = threading.Lock()
        self._busy = 0  # slots taken by leads being claimed, held or sent
        self._held: set[str] = set()  # claimed by us, not yet handed to the client
        self._futures: set[Future] = set()
        self._turned_away = False  # a reservation found no free slot since the last poll
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._poller: threading.Thread | None = None
        # Evented: new and retried leads go out through one sender loop and are settled in
        # batches by one settler thread (see relay.delivery.sender); the pool keeps the rest.
        self._sender = Sender(client.connections, self._sent) if evented else None
        self._settler = Settler(self._record, self._give_slots)
        self._settling = False  # the sender loop and the settler are running

    # --- lifecycle ---

    def start(self) -> None:
        """Start polling; after a stop() this starts afresh."""
        if self._poller is not None and self._poller.is_alive() and not self._stopping.is_set():
            return
        if self._stopping.is_set():
            self._restart()
        if self._sender is not None:
            self._start_settling()
        self._poller = threading.Thread(target=self._poll_forever, name="relay-delivery-poller",
                                        daemon=True)
        self._poller.start()

    def stop(self, timeout_s: float) -> None:
        """Stop claiming, let sends in flight finish, give back leads not yet sent."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        self._stopping.set()
        self._wake.set()
        if self._poller is not None:
            self._poller.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            pending = set(self._futures)
        wait_for_futures(pending, timeout=max(0.0, deadline - time.monotonic()))
        self._release_held()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._sender is not None:
            self._sender.stop(max(0.0, deadline - time.monotonic()))
            self._stop_settling(max(0.0, deadline - time.monotonic()))

    def _restart(self) -> None:
        if self._poller is not None:
            self._poller.join()
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="relay-delivery")
        self._stopping.clear()

    @property
    def evented(self) -> bool:
        """Calls go out through the sender loop (else a pool thread sends each)."""
        return self._sender is not None

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._busy

    # --- the two ways in ---

    def reserve(self) -> bool:
        """Hold a free slot for a lead about to be stored already leased to this dispatcher.

        The caller then stores the lead with ``lease_owner=self.owner`` and hands it to
        :meth:`deliver_leased`, or gives the slot back with :meth:`unreserve`.
        """
        if self._stopping.is_set():
            return False
        if self._take_slots(1) == 1:
            return True
        with self._lock:
            self._turned_away = True  # the lead will wait in the outbox: fetch it when a slot frees
        return False

    def unreserve(self) -> None:
        self._give_slots(1)

    def deliver_leased(self, lead: Lead) -> Future[Outcome | None]:
        """Deliver a lead stored with this dispatcher's lease, in the slot reserve() held."""
        with self._lock:
            self._held.add(lead.id)
        return self._dispatch(lead)

    def poll_once(self) -> int:
        """Claim what is due into the free slots; returns how many were claimed."""
        if self._stopping.is_set():
            return 0
        free = self._take_slots(self.concurrency)
        if not free:
            return 0
        with self._lock:
            self._turned_away = False
        try:
            leads = self.store.claim_due(self.owner, free, self.lease_s, self.clock())
        except BaseException:
            self._give_slots(free)
            raise
        self._give_slots(free - len(leads))
        if len(leads) == free:
            with self._lock:
                self._turned_away = True  # more may be due: look again when a slot frees
        for lead in leads:
            with self._lock:
                self._held.add(lead.id)
            self._dispatch(lead)
        return len(leads)

    # --- internals ---

    def _poll_forever(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.poll_once()
                failures = 0
                pause = self.poll_interval_s
            except Exception as exc:  # the loop must outlive any store or row trouble
                failures += 1
                pause = min(MAX_STORE_BACKOFF_S, self.poll_interval_s * 2 ** min(failures, 5))
                log.warning("claiming due leads failed: %s", _describe(exc),
                            extra={"result": "store_error", "attempt": failures})
            self._wake.wait(pause)

    def _run(self, work: Callable[..., Outcome | None], arg: object) -> Future[Outcome | None]:
        try:
            future = self._pool.submit(self._guarded, work, arg)
        except RuntimeError:  # the pool was shut down under us
            self._give_slots(1)
            if isinstance(arg, Lead):
                self._give_back(arg.id)
            return _done(None)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)
        return future

    def _guarded(self, work: Callable[..., Outcome | None], arg: object) -> Outcome | None:
        try:
            return work(arg)
        except Exception as exc:
            lead_id = arg.id if isinstance(arg, Lead) else str(arg)
            log.exception("delivery of a lead failed unexpectedly: %s", _describe(exc),
                          extra={"lead_id": lead_id, "result": "error"})
            return None
        finally:
            self._give_slots(1)

    def _deliver(self, lead: Lead) -> Outcome | None:
        if lead.status == "fetching":
            resolved = self._resolve(lead)
            if resolved is None:
                return None
            lead = resolved
        ready = self._ready(lead)
        if ready is None:
            return None
        call, target = ready
        started = time.monotonic()
        outcome = self.client.send(call, lead_id=lead.id)
        return self._record([Sent(lead, target, None, started, outcome, time.monotonic() - started)])[0]

    def _ready(self, lead: Lead, aside: Callable[[Callable[[], None]], None] | None = None
               ) -> tuple[TrackdriveCall, str] | None:
        """The call to send and its target, once the lead may go now; None when it is dealt with.

        ``aside`` runs the store write that deals with a lead not sent (dead for a bad row,
        deferred while Trackdrive is paused); by default, at once on this thread.
        """
        run = aside if aside is not None else _at_once
        call = _call_of(lead)
        if call is None:
            if self._take_held(lead.id):
                run(lambda: self._settle_bad_row(lead))
            return None
        target = self._target_of(call)
        paused_until = self.breakers.admit(target)
        if paused_until is not None:
            if self._take_held(lead.id):
                run(lambda: self._defer(lead.id, paused_until))
            return None
        if (self._stopping.is_set() or not self.limiter.acquire(self._stopping)
                or not self._take_held(lead.id)):
            self._give_back(lead.id)
            return None
        return call, target

    def _aside(self, write: Callable[[], None]) -> None:
        """A store write the vendor's answer need not wait for: the pool runs it."""
        try:
            self._pool.submit(write)
        except RuntimeError:  # the pool is shut down: here, then
            write()

    def _record(self, sent: list[Sent]) -> list[Outcome]:
        """Breakers told, attempts settled in one write, attempt lines logged; the outcomes."""
        settlements = []
        for item in sent:
            self.breakers.record(item.target, item.outcome)
            settlements.append(self._settlement(item.outcome, item.lead.attempts, item.latency_s))
        self._settle_many([(item.lead, settlement) for item, settlement in zip(sent, settlements, strict=True)])
        for item, settlement in zip(sent, settlements, strict=True):
            _log_attempt(item.lead, item.outcome, settlement, item.latency_s)
        return [item.outcome for item in sent]

    # --- the evented way: one sender loop, one settler ---

    def _dispatch(self, lead: Lead) -> Future[Outcome | None]:
        if (self._sender is None or lead.status != "queued" or not self.limiter.unlimited
                or self._stopping.is_set()):
            return self._run(self._deliver, lead)  # the pool gives a lead back once it is shut down
        if not self._settling:
            self._start_settling()  # as the pool starts its threads: on first use, start() or not
        future: Future[Outcome | None] = Future()
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)
        try:
            self._begin(lead, future)
        except Exception as exc:
            log.exception("delivery of a lead failed unexpectedly: %s", _describe(exc),
                          extra={"lead_id": lead.id, "result": "error"})
            # Not sent: given back at once (due again, no attempt spent) rather than held
            # until its lease expires.
            self._aside(lambda: self._release(lead.id))
            self._give_slots(1)
            future.set_result(None)
        return future

    def _begin(self, lead: Lead, future: Future[Outcome | None]) -> None:
        """Hand the lead's call to the sender; its slot is given back once it is settled."""
        assert self._sender is not None
        # Called from the request thread for a new lead: a lead that is not sent now (Trackdrive
        # paused, a bad row) is recorded by the pool, so the vendor's answer does not wait for it.
        ready = self._ready(lead, aside=self._aside)
        if ready is None:
            self._give_slots(1)
            future.set_result(None)
            return
        call, target = ready
        started = time.monotonic()
        prepared = self.client.prepare(call, lead_id=lead.id)
        if isinstance(prepared, Prepared):
            try:
                request = prepared.encoded()
            except WireError as exc:
                outcome = self.client.outcome_of(prepared, exc)
            except Exception as exc:  # as the blocking client answers a call it cannot make
                log.warning("unexpected error encoding a Trackdrive call: %s", type(exc).__name__,
                            extra={"lead_id": lead.id})
                outcome = RetryLater("error", None, type(exc).__name__, None)
            else:
                self._sender.submit(Exchange(request, prepared.connect_timeout_s, prepared.read_timeout_s,
                                             tag=(Sent(lead, target, future, started), prepared)))
                return
        else:
            outcome = prepared
        self._settler.add([Sent(lead, target, future, started, outcome, 0.0)])

    def _sent(self, finished: Finished) -> None:
        """In the sender's loop: what each answer means, handed to the settler in one go."""
        done = time.monotonic()
        sent = []
        for exchange, result in finished:
            item, prepared = exchange.tag
            try:
                outcome = self.client.outcome_of(prepared, result)
            except Exception as exc:  # a lead must still be settled, and the loop go on
                log.exception("reading Trackdrive's answer failed unexpectedly", extra={"lead_id": item.lead.id})
                outcome = RetryLater("error", None, type(exc).__name__, None)
            sent.append(replace(item, outcome=outcome, latency_s=done - item.started))
        self._settler.add(sent)

    def _start_settling(self) -> None:
        assert self._sender is not None
        with self._lock:
            if self._settling:
                return
            self._settling = True
        self._sender.start()
        self._settler.start()

    def _stop_settling(self, timeout_s: float) -> None:
        assert self._sender is not None
        with self._lock:
            self._settling = False
        self._settler.stop(timeout_s, busy=lambda: self._sender is not None and self._sender.running)

    def _resolve(self, lead: Lead) -> Lead | None:
        """Fetch and map a ``fetching`` lead; the lead to send, or None when there is nothing to send now."""
        if not self._take_held(lead.id):
            return None
        latency_s = 0.0
        if self.resolver is None:
            outcome: Resolved = RetryLater("no_resolver", None, "this process cannot fetch leads")
        else:
            started = time.monotonic()
            try:
                outcome = self.resolver.resolve(lead)
            except Exception as exc:  # a resolver defect must not strand the lead: retried, and loud
                log.exception("fetching a lead failed unexpectedly", extra={"lead_id": lead.id})
                outcome = RetryLater("fetch_error", None, type(exc).__name__)
            latency_s = time.monotonic() - started
        if not isinstance(outcome, Resolution):
            settlement = self._settlement(outcome, lead.attempts, 0.0)
            self._settle(lead, settlement)
            _log_attempt(lead, outcome, settlement, 0.0)
            return None
        kept = self.store.resolve(lead.id, self.owner, status=outcome.status, call=outcome.call,
                                  error=outcome.error, fetched=outcome.fetched,
                                  mapping_version=outcome.mapping_version, now=self.clock())
        log.info("lead fetched: %s", outcome.status,
                 extra={"lead_id": lead.id, "source": lead.source, "result": "fetched",
                        "status": outcome.status, "latency_ms": round(latency_s * 1000, 1)})
        if not kept or outcome.status != "queued":
            return None
        with self._lock:
            self._held.add(lead.id)
        return replace(lead, status="queued", call=outcome.call, fetched=outcome.fetched)

    def _settlement(self, outcome: Outcome, attempts_before: int, latency_s: float) -> Settlement:
        now = self.clock()
        if isinstance(outcome, Delivered):
            return Settlement("delivered", now, outcome.status, outcome.body, latency_s=latency_s)
        if isinstance(outcome, RetryLater):
            delay = self.policy.next_delay(attempts_before + 1, outcome.retry_after_s)
            if delay is None:
                return Settlement("dead", now, outcome.status, outcome.body,
                                  reason=f"retries_exhausted:{outcome.reason}", latency_s=latency_s)
            return Settlement("retry", now, outcome.status, outcome.body, next_attempt_at=now + delay,
                              reason=outcome.reason, latency_s=latency_s)
        assert isinstance(outcome, Failed)
        return Settlement("dead", now, outcome.status, outcome.body, reason=outcome.reason,
                          latency_s=latency_s)

    def _settle_bad_row(self, lead: Lead) -> None:
        settlement = Settlement("dead", self.clock(), reason="bad_row",
                                response_body="the stored call is missing or malformed")
        self._settle(lead, settlement)
        log.error("lead has no deliverable call", extra=_fields(lead, "dead", None, None, "bad_row"))
        metrics.record_attempt(lead.source, "dead", "bad_row")

    def _settle(self, lead: Lead, settlement: Settlement) -> None:
        self._settle_many([(lead, settlement)])

    def _settle_many(self, settled: list[tuple[Lead, Settlement]]) -> None:
        """Record the attempts in one write, retrying until the store takes it; only a stop gives up.

        Giving up while Trackdrive already has the leads means their leases expire and they
        are sent again: a store outage must cost time, not a duplicate.
        """
        first = settled[0][0].id if settled else None
        attempt = 0
        while settled:
            attempt += 1
            try:
                kept = self.store.settle_many(self.owner, [(lead.id, settlement) for lead, settlement in settled])
            except Exception as exc:
                if attempt == 1 or attempt % SETTLE_LOG_EVERY == 0:
                    log.warning("settling %d lead(s) failed, retrying until the store is back: %s",
                                len(settled), _describe(exc),
                                extra={"lead_id": first, "result": "store_error", "attempt": attempt})
                if self._stopping.wait(min(MAX_SETTLE_BACKOFF_S, 0.05 * 2 ** min(attempt, 5))):
                    # The lease expires and the lead is sent again; the Idempotency-Key
                    # lets Trackdrive recognise the repeat.
                    for lead, _ in settled:
                        log.warning("stopping with a delivery unrecorded",
                                    extra={"lead_id": lead.id, "result": "store_error"})
                    return
                continue
            for (lead, settlement), recorded in zip(settled, kept, strict=True):
                if not recorded:
                    log.warning("lease lost before settling", extra=_fields(lead, "lease_lost", None,
                                                                         None, settlement.reason))
                elif attempt > 1:
                    log.info("settled after the store came back",
                             extra={"lead_id": lead.id, "result": "settled", "attempt": attempt})
            return

    def _target_of(self, call: TrackdriveCall) -> str:
        return base_url_key(call, getattr(self.client, "env", {}),
                            getattr(self.client, "default_base_url", ""))

    def _defer(self, lead_id: str, until: float) -> None:
        """Put a lead back untouched while its Trackdrive is paused: no attempt is spent."""
        try:
            deferred = self.store.defer(lead_id, self.owner, until, self.clock())
        except NotImplementedError:
            deferred = False
        except Exception as exc:  # its lease expires instead
            log.warning("deferring a lead failed: %s", _describe(exc),
                        extra={"lead_id": lead_id, "result": "store_error"})
            return
        if not deferred:
            self._release(lead_id)

    def _take_held(self, lead_id: str) -> bool:
        """Move a lead from held to being sent; False if stop() already gave it back."""
        with self._lock:
            if lead_id not in self._held:
                return False
            self._held.discard(lead_id)
            return True

    def _give_back(self, lead_id: str) -> None:
        with self._lock:
            held = lead_id in self._held
            self._held.discard(lead_id)
        if held:
            self._release(lead_id)

    def _release_held(self) -> None:
        with self._lock:
            held, self._held = self._held, set()
        for lead_id in held:
            self._release(lead_id)

    def _release(self, lead_id: str) -> None:
        try:
            self.store.release(lead_id, self.owner)
        except Exception as exc:  # its lease will expire instead
            log.warning("releasing a lead failed: %s", _describe(exc),
                        extra={"lead_id": lead_id, "result": "store_error"})

    def _take_slots(self, wanted: int) -> int:
        with self._lock:
            taken = max(0, min(wanted, self.concurrency - self._busy))
            self._busy += taken
            return taken

    def _give_slots(self, count: int) -> None:
        if count <= 0:
            return
        with self._lock:
            self._busy -= count
            turned_away = self._turned_away
        if turned_away:
            # A new lead found the pool full and waits in the outbox: fetch it now.
            self._wake.set()

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._futures.discard(future)


def _at_once(write: Callable[[], None]) -> None:
    write()


def _call_of(lead: Lead) -> TrackdriveCall | None:
    try:
        return TrackdriveCall.from_dict(lead.call)  # type: ignore[arg-type]
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _done(result: Outcome | None) -> Future[Outcome | None]:
    future: Future[Outcome | None] = Future()
    future.set_result(result)
    return future


def _describe(exc: BaseException) -> str:
    # Store errors name their problem; other exception texts could quote data, so only the type.
    message = getattr(exc, "message", None)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _fields(lead: Lead, result: str, status: int | None, latency_s: float | None,
            reason: str, next_attempt_in_s: float | None = None) -> dict[str, object]:
    return {"lead_id": lead.id, "source": lead.source, "request_id": lead.request_id, "result": result,
            "status": status, "latency_ms": None if latency_s is None else round(latency_s * 1000, 1),
            "attempt": lead.attempts + 1, "reason": reason, "next_attempt_in_s": next_attempt_in_s}


def _log_attempt(lead: Lead, outcome: Outcome, settlement: Settlement, latency_s: float) -> None:
    status = getattr(outcome, "status", None)
    reason = getattr(outcome, "reason", "")
    level = logging.INFO if settlement.result == "delivered" else logging.WARNING
    next_in_s = (None if settlement.next_attempt_at is None
                 else round(max(0.0, settlement.next_attempt_at - settlement.at), 1))
    if log.isEnabledFor(level):
        # Built and handled directly: Logger.log would walk the stack for a caller no line shows,
        # which cost more than the rest of the line.
        log.handle(log.makeRecord(log.name, level, "", 0, "lead %s: %s", (settlement.result, reason or status),
                                  None, extra=_fields(lead, settlement.result, status, latency_s, reason,
                                                      next_in_s)))
    metrics.record_attempt(lead.source, settlement.result, settlement.reason,
                           received_at=lead.received_at, settled_at=settlement.at)
