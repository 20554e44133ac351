"""The sample payloads are the vendors' own shapes: checked against their SDK types, and the
adapters read what those SDK types produce."""

from __future__ import annotations

import json
from typing import Any

import pytest
from vapi.core.pydantic_utilities import parse_obj_as
from vapi.types import ServerMessageConversationUpdate, ServerMessageEndOfCallReport, ServerMessageHang, ServerMessageStatusUpdate
from voiceos.models.conversation_response import ConversationResponse

from callvault.models import Status
from callvault.vendors import cozmox, speaknode, voiceos
from callvault.vendors.base import PayloadError
from tests.conftest import payload

VAPI_TYPES = {
    "status-update": ServerMessageStatusUpdate,
    "end-of-call-report": ServerMessageEndOfCallReport,
    "conversation-update": ServerMessageConversationUpdate,
    "hang": ServerMessageHang,
}


@pytest.mark.parametrize(
    "name",
    [
        "status-update-ringing",
        "status-update-in-progress",
        "status-update-ended",
        "conversation-update",
        "hang",
        "end-of-call-report",
    ],
)
def test_cozmox_samples_are_vapi_sdk_messages(name: str) -> None:
    message = payload(f"cozmox/{name}")["message"]
    parsed: Any = parse_obj_as(VAPI_TYPES[message["type"]], message)  # type: ignore[arg-type]  # raises unless the SDK accepts it
    # Round-trip through the SDK's own serialization, then through our adapter.
    wire = json.loads(parsed.json())
    event = cozmox.parse("server-messages", {"message": wire}, {})
    assert event.session_id == message["call"]["id"]
    assert event.update is not None


def test_cozmox_report_from_sdk_serialization_keeps_facts() -> None:
    message = payload("cozmox/end-of-call-report")["message"]
    wire = json.loads(parse_obj_as(ServerMessageEndOfCallReport, message).json())
    update = cozmox.parse("server-messages", {"message": wire}, {}).update
    assert update is not None
    assert update.status is Status.ENDED and update.ended_reason == "customer-ended-call"
    assert update.recording_url and update.recording_url.endswith("-mono.wav")
    assert update.transcript is not None and len(update.transcript) == 6
    assert update.summary == "Caller booked a table for two at 7pm."
    assert update.from_number == "+14155550142" and update.to_number == "+14155550100"


def test_cozmox_timestamp_as_iso_or_epoch_ms() -> None:
    for stamp in (1795172414000, "2026-11-20T11:00:14.000Z"):
        body = payload("cozmox/end-of-call-report")
        body["message"]["timestamp"] = stamp
        assert cozmox.parse("server-messages", body, {}).update is not None


@pytest.mark.parametrize("name", ["conversation-started", "conversation-ended"])
def test_voiceos_samples_are_sdk_conversations(name: str) -> None:
    conversation = payload(f"voiceos/{name}")["data"]
    sdk = ConversationResponse.from_dict(conversation)  # raises unless the SDK accepts it
    assert sdk is not None
    # (The SDK's own serializers fail on its enums, so the validated dict itself is sent.)
    wire = {"event": f"conversation:{'ended' if 'ended' in name else 'started'}", "data": conversation}
    event = voiceos.parse("events", wire, {})
    assert event.session_id == conversation["id"]


def test_speaknode_doc_example_maps_every_documented_field() -> None:
    update = speaknode.parse("conversation-complete", payload("doc-examples/speaknode"), {}).update
    assert update is not None
    assert update.status is Status.ENDED
    assert update.recording_url == "string" and update.recording_expires_at == "2019-08-24T14:15:22.000Z"
    assert update.transcript and (update.transcript[0].get("tool") or {}).get("name") == "string"
    assert set(update.vendor_fields) >= {"telecom_provider", "campaign_id", "test_eval_result", "url_parameters"}


def test_missing_session_id_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="no session id"):
        speaknode.parse("session-started", {"event": "SessionStarted", "data": {"agent_id": "a"}}, {})
