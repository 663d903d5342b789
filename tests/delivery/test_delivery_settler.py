"""The settler's thread: batches recorded, slots freed and futures resolved, whatever a batch does."""
from __future__ import annotations

import threading
from concurrent.futures import Future

from relay.delivery.outcome import Delivered, Outcome
from relay.delivery.settler import Sent, Settler

from delivery_fakes import create_call, make_lead

OK = Delivered(201, "{}")


def sent(lead_id: str) -> Sent:
    return Sent(make_lead(lead_id, create_call().to_dict()), "http://td", Future(), 0.0, OK, 0.01)


def test_every_call_is_recorded_then_freed_and_resolved() -> None:
    batches: list[list[str]] = []
    freed: list[int] = []
    settler = Settler(lambda batch: batches.append([s.lead.id for s in batch]) or [s.outcome for s in batch],
                      freed.append)
    settler.start()
    items = [sent(f"L{n}") for n in range(5)]
    settler.add(items[:2])
    settler.add(items[2:])
    assert [item.future.result(timeout=10) for item in items if item.future] == [OK] * 5
    settler.stop(5, busy=lambda: False)
    assert sorted(lead for batch in batches for lead in batch) == [f"L{n}" for n in range(5)]
    assert sum(freed) == 5


def test_a_batch_whose_recording_fails_still_frees_its_slots_and_the_thread_goes_on(caplog) -> None:
    calls = []

    def record(batch: list[Sent]) -> list[Outcome]:
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("a defect")
        return [s.outcome for s in batch]

    freed: list[int] = []
    settler = Settler(record, freed.append)
    settler.start()
    first, second = sent("L1"), sent("L2")
    settler.add([first])
    assert first.future is not None and first.future.result(timeout=10) is None
    settler.add([second])
    assert second.future is not None and second.future.result(timeout=10) == OK
    settler.stop(5, busy=lambda: False)
    assert sum(freed) == 2 and "recording delivered leads failed unexpectedly" in caplog.text


def test_a_stop_waits_for_calls_still_in_flight() -> None:
    in_flight = threading.Event()
    in_flight.set()
    settler = Settler(lambda batch: [s.outcome for s in batch], lambda count: None)
    settler.start()
    settler.stop(0.2, busy=in_flight.is_set)  # gives up waiting; the thread does not
    late = sent("L9")
    settler.add([late])  # the answer of a call that was still in flight
    assert late.future is not None and late.future.result(timeout=10) == OK
    in_flight.clear()
    settler.stop(5, busy=in_flight.is_set)
