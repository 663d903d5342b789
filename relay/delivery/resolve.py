"""The fetch stage: a lead stored as ``fetching`` becomes a mapped lead before it is sent.

Some vendors send ids only; the lead itself is read from their API. That read
happens in the delivery worker, after the vendor has had its answer, through a
:class:`LeadResolver` (relay.runtime builds the real one from the loaded
sources). Its result is a value, as a delivery attempt's is: a
:class:`Resolution` (the lead is now a call, a refusal or a drop) or an
:data:`~relay.delivery.outcome.Outcome` of the fetch itself (retry later, or
failed for good).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from relay.delivery.outcome import Outcome
from relay.store.base import Lead


@dataclass(frozen=True)
class Resolution:
    status: str  # queued | rejected | dropped
    call: dict[str, Any] | None
    error: dict[str, Any] | None
    fetched: Any  # what the vendor's API returned, kept with the lead
    mapping_version: str


Resolved = Resolution | Outcome


class LeadResolver(Protocol):
    def resolve(self, lead: Lead) -> Resolved: ...
