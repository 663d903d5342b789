"""The hand-over of a just-stored lead to a dispatcher, as the web layer does it."""
from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from relay.delivery.dispatcher import Dispatcher


def hand_over(dispatcher: Dispatcher, store: Any, lead_id: str) -> Future[Any]:
    """Reserve a slot, lease the lead to the dispatcher, deliver it in that slot.

    The web layer stores a new lead already leased; for a row that exists, a claim
    gives the same lease. The future's result is None when no slot was free or the
    lead could not be leased: it then stays in the outbox for the poller.
    """
    if not dispatcher.reserve():
        return _done(None)
    lead = store.claim(lead_id, dispatcher.owner, dispatcher.lease_s, dispatcher.clock())
    if lead is None:
        dispatcher.unreserve()
        return _done(None)
    return dispatcher.deliver_leased(lead)


def _done(result: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(result)
    return future
