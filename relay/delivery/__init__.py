"""Delivery to Trackdrive: outcomes, retry policy, client and dispatcher."""
from relay.delivery.client import TrackdriveClient
from relay.delivery.dispatcher import Dispatcher
from relay.delivery.outcome import Delivered, Failed, Outcome, RetryLater, classify
from relay.delivery.ratelimit import TokenBucket
from relay.delivery.retry import RetryPolicy

__all__ = ["Delivered", "Dispatcher", "Failed", "Outcome", "RetryLater", "RetryPolicy",
           "TokenBucket", "TrackdriveClient", "classify"]
