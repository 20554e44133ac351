"""The sample payloads are the vendors' own shapes: checked against their SDK types, and the
adapters read what those SDK types produce."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from vapi.core.pydantic_utilities import parse_obj_as
from vapi.types import (
    ServerMessageConversationUpdate,
    ServerMessageEndOfCallReport,
    ServerMessageHang,
    ServerMessageMessage,
    ServerMessageStatusUpdate,
    ServerMessageToolCalls,
)
from voiceos.models.conversation_response import ConversationResponse

from callvault.models import Status
from callvault.vendors import cozmox, speaknode, vapi, voiceos
from callvault.vendors.base import Fetch, PayloadError
from tests.conftest import payload

VAPI_TYPES = {
    "status-update": ServerMessageStatusUpdate,
    "end-of-call-report": ServerMessageEndOfCallReport,
    "conversation-update": ServerMessageConversationUpdate,
    "hang": ServerMessageHang,
    "tool-calls": ServerMessageToolCalls,
}


VAPI_FORMAT_SAMPLES = [
    *(
        ("cozmox", name)
        for name in (
            "status-update-ringing",
            "status-update-in-progress",
            "status-update-ended",
            "conversation-update",
            "hang",
            "end-of-call-report",
        )
    ),
    *(("vapi", name) for name in ("status-update-in-progress", "end-of-call-report", "tool-calls")),
]


@pytest.mark.parametrize(("vendor", "name"), VAPI_FORMAT_SAMPLES)
def test_vapi_format_samples_are_vapi_sdk_messages(vendor: str, name: str) -> None:
    message = payload(f"{vendor}/{name}")["message"]
    parsed: Any = parse_obj_as(VAPI_TYPES[message["type"]], message)  # type: ignore[arg-type]  # raises unless the SDK accepts it
    # Round-trip through the SDK's own serialization, then through our adapter.
    wire = json.loads(parsed.json())
    event = vapi.ADAPTER.parse("server-messages", {"message": wire}, {})
    assert event.session_id == message["call"]["id"]
    assert (event.update is not None) == (message["type"] in vapi.STORED_TYPES)


def _sdk_server_message_types() -> set[str]:
    """Every `type` the SDK's ServerMessage union can carry."""
    found: set[str] = set()
    for member in typing.get_args(ServerMessageMessage):
        pending = [member.model_fields["type"].annotation]
        while pending:
            annotation = pending.pop()
            if typing.get_origin(annotation) is typing.Literal:
                found |= set(typing.get_args(annotation))
            else:
                pending += [a for a in typing.get_args(annotation) if a is not Any]
    return found


def test_every_server_message_type_of_the_sdk_is_stored_or_acknowledged_deliberately() -> None:
    sdk_types = _sdk_server_message_types()
    assert len(sdk_types) > 20  # the enumeration found the union's members
    assert not vapi.STORED_TYPES & vapi.ACKNOWLEDGED_TYPES
    assert sdk_types - (vapi.STORED_TYPES | vapi.ACKNOWLEDGED_TYPES) == set()


@pytest.mark.parametrize("message_type", sorted(vapi.STORED_TYPES | vapi.ACKNOWLEDGED_TYPES))
def test_each_classified_type_is_filed_as_classified(message_type: str) -> None:
    body = payload("vapi/status-update-in-progress")
    body["message"]["type"] = message_type
    event = vapi.ADAPTER.parse("server-messages", body, {})
    assert event.event_type == message_type
    assert (event.update is None) == (message_type in vapi.ACKNOWLEDGED_TYPES)


def test_cozmox_is_the_vapi_adapter_under_its_own_name() -> None:
    assert cozmox.ADAPTER.vendor == "cozmox" and vapi.ADAPTER.vendor == "vapi"
    assert cozmox.ADAPTER.parse is vapi.ADAPTER.parse and cozmox.ADAPTER.auth_scheme is vapi.ADAPTER.auth_scheme


VAPI_LINK = "https://storage.vapi.ai/3f9c2b1e-1795172414000-5b1e0c2a-{}.wav"


@pytest.mark.parametrize(("suffix", "kind"), [("mono", "mono"), ("stereo", "stereo"), ("customer", "customer"), ("x", "mono")])
def test_vapi_storage_link_becomes_the_authenticated_recording_request(
    monkeypatch: pytest.MonkeyPatch, suffix: str, kind: str
) -> None:
    monkeypatch.setenv("CALLVAULT_API_KEY_VAPI", "k1,k2")
    monkeypatch.delenv("CALLVAULT_API_URL_VAPI", raising=False)
    fetch = vapi.ADAPTER.recording_fetch("call/1", VAPI_LINK.format(suffix))
    assert fetch.url == f"https://api.vapi.ai/call/call%2F1/{kind}-recording"
    assert dict(fetch.headers) == {"Authorization": "Bearer k1"}


def test_other_links_and_no_key_are_fetched_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLVAULT_API_KEY_VAPI", "k1")
    for url in ("https://recordings.example.com/a-mono.wav", "https://storage.vapi.ai.evil.example/a-mono.wav"):
        assert vapi.ADAPTER.recording_fetch("c", url) == Fetch(url)
    assert cozmox.ADAPTER.recording_fetch("c", VAPI_LINK.format("mono")) == Fetch(VAPI_LINK.format("mono"))
    monkeypatch.setenv("CALLVAULT_API_KEY_VAPI", "[]")  # the template's empty secret: no key yet
    assert vapi.ADAPTER.recording_fetch("c", VAPI_LINK.format("mono")) == Fetch(VAPI_LINK.format("mono"))


def test_cozmox_report_from_sdk_serialization_keeps_facts() -> None:
    message = payload("cozmox/end-of-call-report")["message"]
    wire = json.loads(parse_obj_as(ServerMessageEndOfCallReport, message).json())
    update = cozmox.ADAPTER.parse("server-messages", {"message": wire}, {}).read_update()
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
        assert cozmox.ADAPTER.parse("server-messages", body, {}).update is not None


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
    update = speaknode.parse("conversation-complete", payload("doc-examples/speaknode"), {}).read_update()
    assert update is not None
    assert update.status is Status.ENDED
    assert update.recording_url == "string" and update.recording_expires_at == "2019-08-24T14:15:22.000Z"
    assert update.transcript and (update.transcript[0].get("tool") or {}).get("name") == "string"
    assert set(update.vendor_fields) >= {"telecom_provider", "campaign_id", "test_eval_result", "url_parameters"}


def test_missing_session_id_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="no session id"):
        speaknode.parse("session-started", {"event": "SessionStarted", "data": {"agent_id": "a"}}, {})
