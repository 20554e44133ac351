"""The session changes a stream batch carries, and the record a batch is retried from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from callvault import changes
from callvault.changes import SessionChange


def _record(
    n: int, sk: str = "SESSION", *, old: dict[str, Any] | None = None, new: dict[str, Any] | None = None
) -> dict[str, Any]:
    stream: dict[str, Any] = {
        "Keys": {"pk": {"S": "vapi#d"}, "sk": {"S": sk}},
        "SequenceNumber": f"{n:021d}",
        "ApproximateCreationDateTime": 1764673200 + n,
    }
    if old is not None:
        stream["OldImage"] = old
    if new is not None:
        stream["NewImage"] = new
    return {"eventID": f"id-{n}", "eventName": "MODIFY" if old else "INSERT", "dynamodb": stream}


def test_only_session_items_in_order() -> None:
    new = {"pk": {"S": "vapi#d"}, "sk": {"S": "SESSION"}, "status": {"S": "ended"}}
    records = [_record(1, new=new), _record(2, "EVENT#e", new={}), _record(3, old=new, new=new)]
    found = changes.from_records(records)
    assert [(c.change_id, c.kind, c.sequence) for c in found] == [
        ("id-1", "INSERT", f"{1:021d}"),
        ("id-3", "MODIFY", f"{3:021d}"),
    ]
    assert found[0].old is None and found[0].new == new
    assert found[0].written_at == "2025-12-02T11:00:01Z"


def test_erased_only_on_the_write_that_made_the_tombstone() -> None:
    live = {"sk": {"S": "SESSION"}, "status": {"S": "ended"}}
    tomb = {"sk": {"S": "SESSION"}, "erased_at": {"S": "2026-12-02T00:00:00Z"}}
    erasing, after = changes.from_records([_record(1, old=live, new=tomb), _record(2, old=tomb, new=tomb)])
    assert erasing.erased and not after.erased


def test_the_batch_is_retried_from_the_earliest_change_any_consumer_missed() -> None:
    batch = changes.from_records([_record(n, new={"sk": {"S": "SESSION"}}) for n in range(5)])
    seen: list[list[str]] = []

    def upto(index: int | None) -> changes.Consumer:
        def consume(given: Sequence[SessionChange]) -> int | None:
            seen.append([c.change_id for c in given])
            return index

        return consume

    assert changes.first_unhandled(batch, [upto(None), upto(None)]) is None
    assert changes.first_unhandled(batch, [upto(3), upto(None), upto(1)]) is batch[1]
    assert all(len(s) == 5 for s in seen)  # every consumer saw the whole batch
