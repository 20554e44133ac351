"""Retell through its real handler: every stored event, the analysis merged, the recording queued
with its expiry, tool calls in the transcript, and what is only acknowledged."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Stored, post_webhook
from tests.sdk_payloads import RETELL_CALL_ID, RETELL_RECORDING, retell_event


def test_call_lifecycle_normalized(stored: Stored) -> None:
    for event in ("call_started", "transcript_updated", "call_ended", "call_analyzed"):
        response = post_webhook("retell", "events", retell_event(event))
        assert response.status == 200 and response.json["status"] == "stored", response.json
        assert response.json["session_id"] == RETELL_CALL_ID
    session = stored.session("retell", RETELL_CALL_ID)
    assert session["status"] == "ended"
    assert session["channel"] == "inbound_phone"
    assert session["from_number"] == "+14155550123" and session["to_number"] == "+14155550199"
    assert json.loads(session["agent"]) == {"id": "agent_5c1d9e2f7a3b", "name": "Front desk"}
    assert session["started_at"] == "2026-11-23T09:15:02.000Z"
    assert session["ended_at"] == "2026-11-23T09:16:16.500Z"
    assert float(session["duration_seconds"]) == 74.5
    assert session["ended_reason"] == "user_hangup"
    cost = json.loads(session["cost"])
    assert cost["total_usd"] == 0.125  # Retell prices in cents
    assert cost["breakdown"]["combined_cost"] == 12.5
    # call_analyzed: the analysis merged into the session
    assert session["summary"] == "The caller moved a cleaning to Friday 10:30."
    assert json.loads(session["vf:user_sentiment"]) == "Positive"
    assert json.loads(session["vf:call_successful"]) is True
    # the recording, queued for copying, with the expiry its signed URL carries
    assert session["recording_source_url"] == RETELL_RECORDING
    assert session["recording_expires_at"] == "2026-11-24T09:16:16.000Z"
    assert session["recording_state"] == "pending"
    assert session["event_count"] == 4
    assert sorted(e["type"] for e in stored.events("retell", RETELL_CALL_ID)) == [
        "call_analyzed",
        "call_ended",
        "call_started",
        "transcript_updated",
    ]


def test_transcript_with_tool_calls_and_times(stored: Stored) -> None:
    post_webhook("retell", "events", retell_event("call_ended"))
    transcript = stored.transcript(stored.session("retell", RETELL_CALL_ID))
    assert [t["role"] for t in transcript] == ["assistant", "user", "tool", "tool", "assistant"]
    first_turn = {
        "role": "assistant",
        "text": "Thanks for calling Lee Dental, how can I help?",
        "at": "2026-11-23T09:15:02.400Z",
        "seconds": 0.4,
    }
    assert transcript[0] == first_turn | {"tool": None}
    assert transcript[2]["tool"] == {"name": "reschedule", "arguments": '{"day":"friday"}', "output": None, "is_error": False}
    assert transcript[3]["tool"] == {"name": "reschedule", "arguments": None, "output": '{"ok":true}', "is_error": False}


def test_transcript_object_alone_is_enough(stored: Stored) -> None:
    body = retell_event("call_ended")
    del body["call"]["transcript_with_tool_calls"]
    post_webhook("retell", "events", body)
    transcript = stored.transcript(stored.session("retell", RETELL_CALL_ID))
    assert [(t["role"], t["at"]) for t in transcript] == [
        ("assistant", "2026-11-23T09:15:02.400Z"),
        ("user", "2026-11-23T09:15:06.100Z"),
        ("assistant", "2026-11-23T09:15:14.600Z"),
    ]


def test_late_call_started_does_not_reopen_the_call(stored: Stored) -> None:
    post_webhook("retell", "events", retell_event("call_analyzed"))
    post_webhook("retell", "events", retell_event("call_started"))
    session = stored.session("retell", RETELL_CALL_ID)
    assert session["status"] == "ended" and session["event_count"] == 2


@pytest.mark.parametrize("event", ["transfer_started", "transfer_bridged", "transfer_cancelled", "transfer_ended"])
def test_transfer_events_are_stored_with_their_destination(stored: Stored, event: str) -> None:
    body = retell_event(event)
    response = post_webhook("retell", "events", body)
    assert response.json["status"] == "stored"
    session = stored.session("retell", RETELL_CALL_ID)
    assert json.loads(session["vf:transfer_destination"]) == "+14155550111"
    assert session["status"] == "in_progress"  # call_status "ongoing": the call goes on
    (stored_event,) = stored.events("retell", RETELL_CALL_ID)
    assert stored_event["type"] == event


def test_web_call_and_not_connected_call(stored: Stored) -> None:
    web = retell_event("call_ended")
    web["call"].update(call_id="call_web_1", call_type="web_call", access_token="tok")
    web["call"].pop("direction"), web["call"].pop("from_number"), web["call"].pop("to_number")
    post_webhook("retell", "events", web)
    assert stored.session("retell", "call_web_1")["channel"] == "web"
    failed = {"event": "call_ended", "call": {"call_id": "call_busy", "call_type": "phone_call", "direction": "outbound",
              "call_status": "not_connected", "disconnection_reason": "dial_busy", "agent_id": "a"}}  # fmt: skip
    post_webhook("retell", "events", failed)
    session = stored.session("retell", "call_busy")
    assert (session["status"], session["ended_reason"], session["channel"]) == ("ended", "dial_busy", "outbound_phone")


def test_chat_events_are_acknowledged_and_archived(stored: Stored) -> None:
    body = {"event": "chat_ended", "call": {"call_id": "chat_1"}}
    response = post_webhook("retell", "events", body)
    assert response.json["status"] == "ignored"
    assert stored.keys("raw/retell/events/")
    assert not stored.items()


def test_legacy_data_property_is_read(stored: Stored) -> None:
    body = retell_event("call_ended")
    body["data"] = body.pop("call")
    response = post_webhook("retell", "events", body)
    assert response.json["session_id"] == RETELL_CALL_ID
    assert stored.session("retell", RETELL_CALL_ID)["status"] == "ended"


def test_wrong_key_writes_nothing(stored: Stored) -> None:
    response = post_webhook("retell", "events", retell_event("call_ended"), secret="not-the-api-key")
    assert response.status == 401
    assert not stored.items() and not stored.keys()


def test_retry_is_a_duplicate(stored: Stored) -> None:
    body = json.dumps(retell_event("call_ended")).encode()
    first, again = post_webhook("retell", "events", body), post_webhook("retell", "events", body)
    assert (first.json["status"], again.json["status"]) == ("stored", "duplicate")
    assert again.json["event_id"] == first.json["event_id"]
    assert stored.session("retell", RETELL_CALL_ID)["event_count"] == 1
