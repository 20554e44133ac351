"""The listing's times tell the truth (DESIGN.md "Listing times"): a session is listed, ordered and
filtered by the vendor's creation time, else the call's start time, else when callvault first heard
of it; the key moves when a later event tells a better time, and only then; replay fixes sessions
stored before."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from callvault import sessions, store
from callvault.models import format_utc
from callvault_local.replay import replay
from tests.conftest import Stored, payload, post_webhook

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _retell(call_id: str, started: datetime | None, event: str = "call-ended") -> dict[str, Any]:
    body = copy.deepcopy(payload(f"retell/{event}"))
    body["call"]["call_id"] = call_id
    body["call"].pop("end_timestamp", None)
    if started is None:
        body["call"].pop("start_timestamp", None)
    else:
        body["call"]["start_timestamp"] = int(started.timestamp() * 1000)
    return body


def _post(vendor: str, webhook: str, body: dict[str, Any]) -> None:
    response = post_webhook(vendor, webhook, body)
    assert response.status == 200 and response.json["status"] == "stored", response.json


def _listed(**filters: Any) -> list[tuple[str, str | None]]:
    return [(item.session_id, item.listed_at) for item in sessions.list_sessions(limit=100, **filters).items]


def test_calls_are_listed_by_their_start_whatever_order_they_arrive_in(stored: Stored) -> None:
    # Filed oldest call last, as a reconcile pass (newest first) or a late webhook files them.
    for n in (3, 2, 1, 0):
        _post("retell", "events", _retell(f"call-{n}", START + timedelta(minutes=n)))
    assert _listed(vendor="retell") == [(f"call-{n}", format_utc(START + timedelta(minutes=n))) for n in (3, 2, 1, 0)]
    # Heard of just now, started inside the range: found by it.
    window = {
        "created_after": format_utc(START + timedelta(seconds=30)),
        "created_before": format_utc(START + timedelta(minutes=2)),
    }
    assert [i for i, _ in _listed(vendor="retell", **window)] == ["call-1"]
    # The listing's JSON, as the read API serves it; the session itself keeps its contract's keys.
    page = sessions.list_sessions(vendor="retell", limit=1).model_dump(mode="json")
    assert page["items"][0]["listed_at"] == format_utc(START + timedelta(minutes=3))
    one = sessions.get_session("retell", "call-2")
    assert one is not None and "listed_at" not in one.model_dump()


def test_the_key_moves_when_a_later_event_tells_the_start(stored: Stored) -> None:
    _post("retell", "events", _retell("call-late-start", None, "call-started"))
    ((_, first_heard),) = _listed(vendor="retell")
    assert first_heard is not None and first_heard > format_utc(START)  # when callvault heard of it
    _post("retell", "events", _retell("call-late-start", START))
    assert _listed(vendor="retell") == [("call-late-start", format_utc(START))]
    # by both indexes: the status listing too
    assert _listed(vendor="retell", status="ended") == [("call-late-start", format_utc(START))]


def _voiceos(event: str, *, started: datetime, created: datetime | None = None) -> dict[str, Any]:
    body = copy.deepcopy(payload(f"voiceos/{event}"))
    body["data"]["started_at"] = format_utc(started)
    if created is not None:
        body["data"]["created_at"] = format_utc(created)
    return body


def test_a_creation_time_beats_a_start_and_a_start_never_replaces_it(stored: Stored) -> None:
    created = START - timedelta(minutes=1)
    _post("voiceos", "events", _voiceos("conversation-started", started=START))
    assert [t for _, t in _listed(vendor="voiceos")] == [format_utc(START)]
    _post("voiceos", "events", _voiceos("conversation-ended", started=START, created=created))
    assert [t for _, t in _listed(vendor="voiceos")] == [format_utc(created)]
    # A later event telling only a (different) start: the creation time stays.
    _post("voiceos", "events", _voiceos("conversation-started", started=START + timedelta(seconds=5)))
    assert [t for _, t in _listed(vendor="voiceos")] == [format_utc(created)]


def test_a_start_told_again_moves_nothing(stored: Stored) -> None:
    _post("retell", "events", _retell("call-same", START, "call-started"))
    session = stored.session("retell", "call-same")
    _post("retell", "events", _retell("call-same", START + timedelta(seconds=1)))  # a later, different start
    again = stored.session("retell", "call-same")
    assert again["list_sk"] == session["list_sk"] == store.list_sort_key(format_utc(START), "retell", "call-same")


def test_replay_moves_sessions_stored_before_listing_times(stored: Stored) -> None:
    _post("retell", "events", _retell("call-old", START))
    # As a session stored before listing times was: listed by when callvault first heard of it.
    heard = format_utc(datetime.now(UTC))
    boto3.client("dynamodb").update_item(
        TableName=stored.table,
        Key={"pk": {"S": store.session_pk("retell", "call-old")}, "sk": {"S": "SESSION"}},
        UpdateExpression="SET list_sk = :old REMOVE vendor_list_sk",
        ExpressionAttributeValues={":old": {"S": store.list_sort_key(heard, "retell", "call-old")}},
    )
    assert _listed(vendor="retell") == [("call-old", heard)]
    assert replay("retell") == {"duplicate": 1}
    assert _listed(vendor="retell") == [("call-old", format_utc(START))]
    assert replay("retell") == {"duplicate": 1}  # again: nothing left to move
    assert _listed(vendor="retell") == [("call-old", format_utc(START))]
