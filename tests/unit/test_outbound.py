"""What a session item's write changed for the outside (callvault.outbound.event_types): each
change of a session once, whatever the deliveries that led to it."""

from __future__ import annotations

from typing import Any

import pytest

from callvault import outbound
from callvault.changes import SessionChange


def image(status: str | None = None, recording: str | None = None, **more: Any) -> dict[str, Any]:
    ranks = {"queued": 1, "ringing": 2, "in_progress": 3, "ended": 4}
    item: dict[str, Any] = {"pk": {"S": "vapi#d"}, "sk": {"S": "SESSION"}, "vendor": {"S": "vapi"}, "session_id": {"S": "call-1"}}
    if status:
        item |= {"status": {"S": status}, "status_rank": {"N": str(ranks[status])}}
    if recording:
        item["recording_state"] = {"S": recording}
    return item | more


def change(old: dict[str, Any] | None, new: dict[str, Any] | None, event_id: str = "e1") -> SessionChange:
    kind = "INSERT" if old is None else ("REMOVE" if new is None else "MODIFY")
    return SessionChange(event_id, "1", kind, old, new, "2026-12-02T10:00:00Z")  # type: ignore[arg-type]


TOMBSTONE = {"pk": {"S": "vapi#d"}, "sk": {"S": "SESSION"}, "vendor": {"S": "vapi"}, "erased_at": {"S": "2026-12-02T10:00:00Z"}}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (None, image("ringing"), ["call.started"]),
        (None, image(), ["call.started"]),  # first heard of, no status yet
        (None, image("ended"), ["call.ended"]),  # first heard of when it was over: nothing was in progress
        (None, image("ended", "archived"), ["call.ended", "recording.archived"]),
        ({"pk": {"S": "vapi#d"}, "sk": {"S": "SESSION"}}, image("in_progress"), ["call.started"]),  # the item being made
        (None, {"pk": {"S": "vapi#d"}, "sk": {"S": "SESSION"}}, []),  # keys only: no session yet
        (image("ringing"), image("in_progress"), []),
        (image("in_progress"), image("ended"), ["call.ended"]),
        (image(), image("ended"), ["call.ended"]),
        (image("ended"), image("ended", event_count={"N": "5"}), []),  # a late or pulled event on an ended call
        (image("ended"), image("ended", updated_at={"S": "later"}), []),
        (image("ended", "pending"), image("ended", "pending", recording_claim={"S": "c"}), []),  # the copier's claim
        (image("ended", "pending"), image("ended", "archived"), ["recording.archived"]),
        (image("ended", "pending"), image("ended", "failed"), ["recording.failed"]),
        (image("ended", "failed"), image("ended", "failed", recording_error={"S": "x"}), []),
        (image("ended", "failed"), image("ended", "pending"), []),  # set back by hand
        (image("ended", "archived"), TOMBSTONE, ["call.erased"]),
        (TOMBSTONE, TOMBSTONE | {"last_swept_at": {"S": "t"}}, []),  # the sweep's second write
        (None, TOMBSTONE, []),  # nothing was known to erase
        (image("ended"), None, []),  # retention's TTL: not an erasure
    ],
)
def test_each_change_once(old: dict[str, Any] | None, new: dict[str, Any] | None, expected: list[str]) -> None:
    assert outbound.event_types(change(old, new)) == expected


def test_the_id_is_the_same_for_every_delivery_of_a_change_and_differs_between_changes() -> None:
    ended = change(image("in_progress"), image("ended"), "stream-record-7")
    again = change(image("in_progress"), image("ended"), "stream-record-7")
    assert outbound.change_id(ended, "call.ended") == outbound.change_id(again, "call.ended")
    assert outbound.change_id(ended, "call.ended") != outbound.change_id(ended, "recording.archived")
    failed_once = change(image("ended", "pending"), image("ended", "failed"), "stream-record-8")
    failed_again = change(image("ended", "pending"), image("ended", "failed"), "stream-record-9")  # after a reset by hand
    assert outbound.change_id(failed_once, "recording.failed") != outbound.change_id(failed_again, "recording.failed")


def test_erased_carries_the_vendor_and_session_id_only() -> None:
    (erased,) = outbound.outgoing(change(image("ended", from_number={"S": "+14155550142"}), TOMBSTONE))
    assert erased.detail_type == "Call Erased"
    assert erased.detail.model_dump() == {"id": erased.detail.id, "type": "call.erased", "vendor": "vapi", "session_id": "call-1"}


def test_batches_keep_to_ten_entries_and_256_kb() -> None:
    small = [(i, {"Source": "callvault", "DetailType": "Call Ended", "Detail": "{}"}) for i in range(23)]
    assert [len(b) for b in outbound._batches(small)] == [10, 10, 3]
    large = [(i, {"Source": "callvault", "DetailType": "Call Ended", "Detail": "x" * 100_000}) for i in range(5)]
    assert [len(b) for b in outbound._batches(large)] == [2, 2, 1]


def test_a_detail_past_an_entry_s_size_keeps_the_inline_values_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from callvault import sessions

    huge = image("ended", summary={"M": {"raw": {"S": "raw/vapi/server-messages/2026/12/02/e.json"}}}, to_number={"S": "+1"})

    def resolved(self: object, item: dict[str, Any]) -> dict[str, Any]:
        return item | {"summary": {"S": "x" * 300_000}}  # what the raw body held

    monkeypatch.setattr(sessions.ArchivedBodies, "resolve", resolved)
    (ended,) = outbound.outgoing(change(image("in_progress"), huge))
    assert ended.detail.session.summary is None and ended.detail.session.to_number == "+1"  # type: ignore[attr-defined]
    small = image("ended", summary={"M": {"raw": {"S": "raw/vapi/server-messages/2026/12/02/e.json"}}})
    monkeypatch.setattr(sessions.ArchivedBodies, "resolve", lambda self, item: item | {"summary": {"S": "read back"}})
    (ended,) = outbound.outgoing(change(image("in_progress"), small))
    assert ended.detail.session.summary == "read back"  # type: ignore[attr-defined]
