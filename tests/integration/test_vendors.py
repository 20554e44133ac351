"""Every vendor's documented and sample payloads, stored and normalized through the real handlers."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PAYLOADS, Stored, payload, payload_path, post_webhook

SAMPLES = [
    ("agentsessions", "session-completed", "doc-examples/agentsessions"),
    ("agentsessions", "session-completed", "agentsessions/session-completed"),
    ("cozmox", "server-messages", "cozmox/status-update-ringing"),
    ("cozmox", "server-messages", "cozmox/status-update-in-progress"),
    ("cozmox", "server-messages", "cozmox/conversation-update"),
    ("cozmox", "server-messages", "cozmox/hang"),
    ("cozmox", "server-messages", "cozmox/status-update-ended"),
    ("cozmox", "server-messages", "cozmox/end-of-call-report"),
    ("vapi", "server-messages", "vapi/status-update-in-progress"),
    ("vapi", "server-messages", "vapi/end-of-call-report"),
    ("voiceos", "events", "voiceos/conversation-started"),
    ("voiceos", "events", "voiceos/conversation-ended"),
    ("speaknode", "session-started", "speaknode/session-started"),
    ("speaknode", "conversation-complete", "speaknode/conversation-complete"),
    ("speaknode", "conversation-complete", "doc-examples/speaknode"),
    *[
        ("retell", "events", f"retell/{name}")
        for name in ("call-started", "transcript-updated", "transfer-started", "call-ended", "call-analyzed")
    ],
    *[
        ("elevenlabs", "post-call", f"elevenlabs/{name}")
        for name in ("post-call-transcription", "post-call-audio", "call-initiation-failure")
    ],
]


def test_retell_and_elevenlabs_samples_are_their_sdks_types() -> None:
    # events/payloads/{retell,elevenlabs}/ are built from the SDKs' own models (tests/sdk_payloads.py)
    from tests.sdk_payloads import samples

    for name, body in samples().items():
        assert payload(name) == body, f"{name}: regenerate with `uv run python -m tests.sdk_payloads`"


@pytest.mark.parametrize(("vendor", "webhook", "name"), SAMPLES)
def test_sample_is_stored_with_its_raw_bytes(stored: Stored, vendor: str, webhook: str, name: str) -> None:
    raw = payload_path(name).read_bytes()
    response = post_webhook(vendor, webhook, raw)
    assert response.status == 200, response.json
    assert response.json["status"] == "stored"
    assert response.json["vendor"] == vendor
    (event,) = stored.events(vendor, response.json["session_id"])
    assert event["event_id"] == response.json["event_id"]
    key = event["raw_s3_uri"].split("/", 3)[3]
    assert key.startswith(f"raw/{vendor}/{webhook}/") and key.endswith(f"/{response.json['event_id']}.json")
    assert stored.body(key) == raw  # byte for byte
    session = stored.session(vendor, response.json["session_id"])
    assert session["vendor"] == vendor and session["event_count"] == 1


def test_speaknode_conversation_normalized(stored: Stored) -> None:
    post_webhook("speaknode", "session-started", payload("speaknode/session-started"))
    body = payload("speaknode/conversation-complete")
    response = post_webhook("speaknode", "conversation-complete", body)
    session = stored.session("speaknode", response.json["session_id"])
    assert session["status"] == "ended"
    assert session["started_at"] == "2026-11-20T09:15:02.000Z"
    assert session["ended_at"] == "2026-11-20T09:15:40.400Z"  # start + duration
    assert float(session["duration_seconds"]) == 38.4
    assert session["from_number"] == "+14155550123" and session["to_number"] == "+14155550199"
    assert json.loads(session["agent"]) == {"id": "2b1e3b65-2c04-4fa2-a2d7-467901e98978", "name": "Front desk"}
    assert session["recording_source_url"] == body["data"]["audio_url"]
    assert session["recording_expires_at"] == "2026-11-27T09:15:40.000Z"
    assert session["recording_state"] == "pending"
    transcript = stored.transcript(session)
    assert [t["role"] for t in transcript] == ["system", "assistant", "user", "tool", "assistant", "user"]
    assert transcript[3]["tool"] == {
        "name": "reschedule",
        "arguments": '{"day": "friday"}',
        "output": '{"ok": true, "slot": "10:30"}',
        "is_error": False,
    }
    assert json.loads(session["vf:telecom_provider"]) == "Twilio"
    assert session["event_count"] == 2


def test_speaknode_route_decides_the_event_not_its_label(stored: Stored) -> None:
    # speaknode's own docs show a SessionStarted payload labelled "ConversationComplete".
    body = payload("speaknode/session-started")
    body["event"] = "ConversationComplete"
    response = post_webhook("speaknode", "session-started", body)
    (event,) = stored.events("speaknode", response.json["session_id"])
    assert event["type"] == "SessionStarted"
    session = stored.session("speaknode", response.json["session_id"])
    assert session["status"] == "in_progress"
    assert json.loads(session["vf:declared_event"]) == "ConversationComplete"


def test_cozmox_call_lifecycle(stored: Stored) -> None:
    for name in (
        "status-update-ringing",
        "status-update-in-progress",
        "conversation-update",
        "hang",
        "status-update-ended",
        "end-of-call-report",
    ):
        assert post_webhook("cozmox", "server-messages", payload(f"cozmox/{name}")).json["status"] == "stored"
    call_id = payload("cozmox/hang")["message"]["call"]["id"]
    session = stored.session("cozmox", call_id)
    assert session["status"] == "ended"
    assert session["channel"] == "inbound_phone"
    assert session["from_number"] == "+14155550142" and session["to_number"] == "+14155550100"
    assert session["ended_reason"] == "customer-ended-call"
    assert session["summary"] == "Caller booked a table for two at 7pm."
    assert json.loads(session["cost"])["total_usd"] == 0.0734
    assert session["recording_source_url"].endswith("-mono.wav")
    transcript = stored.transcript(session)
    assert [t["role"] for t in transcript] == ["system", "assistant", "user", "tool", "tool", "assistant"]
    assert transcript[3]["tool"]["name"] == "book_table" and transcript[4]["tool"]["output"] == '{"confirmed": true}'
    assert transcript[1]["at"] == "2026-11-20T11:00:03.000Z"
    assert len(stored.events("cozmox", call_id)) == 6


def test_a_later_event_knowing_less_of_the_agent_keeps_what_the_session_has(stored: Stored) -> None:
    # The end-of-call report names the assistant; the status-update that follows it (same status:
    # ended) carries only its id and must not blank the name.
    for name in ("end-of-call-report", "status-update-ended"):
        assert post_webhook("cozmox", "server-messages", payload(f"cozmox/{name}")).json["status"] == "stored"
    session = stored.session("cozmox", payload("cozmox/hang")["message"]["call"]["id"])
    agent = json.loads(session["agent"])
    assert agent["id"] and agent["name"], agent


@pytest.mark.parametrize("vendor", ["cozmox", "vapi"])
def test_vapi_format_tool_calls_are_acknowledged_and_archived(stored: Stored, vendor: str) -> None:
    raw = (PAYLOADS / f"{vendor}/tool-calls.json").read_bytes()
    response = post_webhook(vendor, "server-messages", raw)
    assert response.status == 200 and response.json["status"] == "ignored"
    (key,) = stored.keys(f"raw/{vendor}/server-messages/")
    assert stored.body(key) == raw
    assert stored.items() == []


@pytest.mark.parametrize(
    "message_type",
    ["transfer-destination-request", "assistant-request", "knowledge-base-request", "speech-update", "brand-new-type"],
)
def test_cozmox_types_not_stored_are_acknowledged(stored: Stored, message_type: str) -> None:
    body = payload("cozmox/hang")
    body["message"]["type"] = message_type
    assert post_webhook("cozmox", "server-messages", body).json["status"] == "ignored"
    assert len(stored.keys("raw/")) == 1 and stored.items() == []


def test_voiceos_conversation(stored: Stored) -> None:
    post_webhook("voiceos", "events", payload("voiceos/conversation-started"))
    response = post_webhook("voiceos", "events", payload("voiceos/conversation-ended"))
    session = stored.session("voiceos", response.json["session_id"])
    assert session["status"] == "ended"
    assert session["channel"] == "outbound_phone"
    assert session["from_number"] == "+16505550000" and session["to_number"] == "+16505550111"
    assert float(session["duration_seconds"]) == 102.0
    assert session["ended_reason"] == "user_ended"
    cost = json.loads(session["cost"])
    assert cost["total_usd"] == 0.1123 and cost["breakdown"]["telephony"]["cost"] == 0.017
    assert json.loads(session["agent"]) == {"id": "agt_sales", "name": "Renewals"}
    assert len(stored.transcript(session)) == 3


@pytest.mark.parametrize(
    "shape",
    [
        lambda c, e: dict(c, event=e),  # the conversation is the body
        lambda c, e: {"type": e, "conversation": c},
        lambda c, e: {"name": e, "payload": c},
        lambda c, e: {"data": dict(c, event=e)},
        lambda c, e: {"event": e, "data": {"conversation": c}},
    ],
)
def test_voiceos_body_shapes(stored: Stored, shape) -> None:  # type: ignore[no-untyped-def]
    conversation = payload("voiceos/conversation-ended")["data"]
    response = post_webhook("voiceos", "events", shape(conversation, "conversation:ended"))
    assert response.status == 200 and response.json["status"] == "stored"
    (event,) = stored.events("voiceos", conversation["id"])
    assert event["type"] == "conversation:ended"
    assert stored.session("voiceos", conversation["id"])["status"] == "ended"


def test_voiceos_function_call_is_acknowledged(stored: Stored) -> None:
    assert post_webhook("voiceos", "events", payload("voiceos/function-call-triggered")).json["status"] == "ignored"
    assert stored.items() == []


def test_agentsessions_normalized_with_vendor_idempotency_key(stored: Stored) -> None:
    body = payload("agentsessions/session-completed")
    response = post_webhook("agentsessions", "session-completed", body)
    assert response.json["event_id"] == body["idempotencyKey"]
    session = stored.session("agentsessions", body["data"]["id"])
    assert session["status"] == "ended" and session["channel"] == "inbound_phone"
    assert session["from_number"] == "+442071838750"
    assert float(session["duration_seconds"]) == 150.25
    transcript = stored.transcript(session)
    assert [t["text"] for t in transcript][:2] == ["Hi, this is Acme support.", "My order never arrived."]
    assert transcript[2]["role"] == "tool" and transcript[2]["tool"]["name"] == "lookup_order"
    assert json.loads(session["vf:billing"]) == {"amount": -3, "reason": "SESSION_USAGE"}


def test_agentsessions_other_session_events_share_the_route(stored: Stored) -> None:
    body = payload("agentsessions/session-completed")
    body.update(type="session.started", idempotencyKey="evt_started_1")
    body["data"].update(status="IN_PROGRESS", endedAt=None, completedAt=None)
    assert post_webhook("agentsessions", "session-completed", body).json["status"] == "stored"
    assert stored.session("agentsessions", body["data"]["id"])["status"] == "in_progress"
