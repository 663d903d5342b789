"""The pipeline alone: parse, split, map now or defer, dedupe keys; no store, no network."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from relay.errors import MalformedBody
from relay.intake.pipeline import MAPPING_ERROR, NO_LEADS, Deferred, evaluate
from relay.mapping import load_source
from relay.mapping.fetch import FetchSpec, PathRef, Text
from relay.mapping.model import InboundRequest, Refusal, TrackdriveCall
from relay.mapping.paths import compile_path
from tests.intake.batch_mappings import BATCHY, YML


@pytest.fixture
def batchy(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "batchy.yaml"
    path.write_text(BATCHY)
    return load_source(path)


def post(payload: object) -> InboundRequest:
    return InboundRequest(content_type="application/json", body=json.dumps(payload).encode())


def test_every_match_of_split_is_a_lead_with_its_own_key_and_outcome(batchy) -> None:  # type: ignore[no-untyped-def]
    evaluation = evaluate(batchy, post({"leads": [{"id": "1", "phone": "5125550147"}, {"id": "2"}]}))
    assert evaluation.split and [d.index for d in evaluation.drafts] == [0, 1]
    first, second = evaluation.drafts
    assert isinstance(first.outcome, TrackdriveCall) and first.dedupe_key == "1"
    assert isinstance(second.outcome, Refusal) and second.outcome.rule == "required"
    assert second.dedupe_key == "2" and [d.status for d in evaluation.drafts] == ["queued", "rejected"]


def test_a_split_that_matches_nothing_is_one_refusal_kept_for_replay(batchy) -> None:  # type: ignore[no-untyped-def]
    [draft] = evaluate(batchy, post({"leads": []})).drafts
    assert isinstance(draft.outcome, Refusal) and draft.outcome.rule == NO_LEADS


def test_an_unreadable_body_raises_its_4xx_error(batchy) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MalformedBody):
        evaluate(batchy, InboundRequest(content_type="application/json", body=b"{nope"))


def test_a_source_that_fetches_defers_each_lead(batchy) -> None:  # type: ignore[no-untyped-def]
    spec = FetchSpec("GET", Text(("https://api.example.com/leads/", PathRef(compile_path("$.id")))))
    fetching = dataclasses.replace(batchy, fetch=spec)
    drafts = evaluate(fetching, post({"leads": [{"id": "a"}, {"id": "b"}]})).drafts
    assert [type(d.outcome) for d in drafts] == [Deferred, Deferred]
    assert [d.status for d in drafts] == ["fetching", "fetching"] and [d.dedupe_key for d in drafts] == ["a", "b"]
    without_id, = evaluate(fetching, post({"leads": [{"name": "c"}]})).drafts
    assert without_id.status == "rejected" and without_id.outcome.rule == "fetch_id_missing"  # type: ignore[union-attr]


def test_a_crash_is_a_mapping_error_refusal_carrying_the_exception(tmp_path: Path) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text(YML)
    source = load_source(path)

    class Exploding(type(source)):  # type: ignore[misc]
        def map_payload(self, payload: object) -> object:
            raise KeyError("defect")

    broken = Exploding(**{f.name: getattr(source, f.name) for f in dataclasses.fields(source)})
    [draft] = evaluate(broken, post({"phone": "5125550147"})).drafts
    assert isinstance(draft.outcome, Refusal) and draft.outcome.rule == MAPPING_ERROR
    assert isinstance(draft.crash, KeyError)


def test_a_header_key_covers_each_lead_of_a_batch_by_position(batchy) -> None:  # type: ignore[no-untyped-def]
    from relay.mapping.inbound import IdempotencyKey

    by_header = dataclasses.replace(batchy, idempotency=IdempotencyKey(header="Idempotency-Key"))
    request = dataclasses.replace(post({"leads": [{"phone": "5125550147"}, {"phone": "5125550148"}]}),
                                  headers={"Idempotency-Key": "req-9"})
    assert [d.dedupe_key for d in evaluate(by_header, request).drafts] == ["req-9#0", "req-9#1"]
