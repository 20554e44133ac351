"""cozmox: server messages in Vapi's format, `{"message": {"type": ..., "call": {...}}}`.

One route takes every message type. Call-lifecycle messages are stored; messages that ask the
receiver for an answer (tool calls, transfers, assistant and knowledge-base requests) and the
chatty real-time ones are acknowledged as `ignored`, their raw payload archived all the same.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, with_config
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from callvault import auth
from callvault.auth import Headers
from callvault.config import Settings
from callvault.models import Agent, Channel, Cost, SessionUpdate, Status, transcript, utc_iso
from callvault.vendors.base import (
    ObjectList,
    ParsedEvent,
    VendorAdapter,
    VendorItem,
    VendorModel,
    compact,
    parse_model,
    require_session_id,
)

VENDOR = "cozmox"
WEBHOOKS = frozenset({"server-messages"})
STORED_TYPES = frozenset({"status-update", "end-of-call-report", "conversation-update", "hang", "transfer-update"})

_STATUS = {
    "scheduled": Status.QUEUED,
    "queued": Status.QUEUED,
    "ringing": Status.RINGING,
    "in-progress": Status.IN_PROGRESS,
    "forwarding": Status.IN_PROGRESS,
    "ended": Status.ENDED,
}
_CHANNEL = {
    "inboundPhoneCall": Channel.INBOUND_PHONE,
    "outboundPhoneCall": Channel.OUTBOUND_PHONE,
    "webCall": Channel.WEB,
    "vapi.websocketCall": Channel.WEB,
}
_ROLES = {"user": "user", "bot": "assistant", "assistant": "assistant", "system": "system"}


class Number(VendorModel):
    number: str | None = None
    twilio_phone_number: str | None = Field(default=None, alias="twilioPhoneNumber")  # call.phoneNumber

    @property
    def e164(self) -> str | None:
        return self.number or self.twilio_phone_number


class CallInfo(VendorModel):
    id: str | None = None
    org_id: str | None = Field(default=None, alias="orgId")
    type: str | None = None
    status: str | None = None
    ended_reason: str | None = Field(default=None, alias="endedReason")
    created_at: str | None = Field(default=None, alias="createdAt")
    started_at: str | None = Field(default=None, alias="startedAt")
    ended_at: str | None = Field(default=None, alias="endedAt")
    cost: float | None = None
    cost_breakdown: dict[str, Any] | None = Field(default=None, alias="costBreakdown")
    assistant_id: str | None = Field(default=None, alias="assistantId")
    customer: Number | None = None
    phone_number: Number | None = Field(default=None, alias="phoneNumber")


class Assistant(VendorModel):
    id: str | None = None
    name: str | None = None


# A typed dict, not a model: a long call has thousands of turns, and this is 2.5x cheaper.
@with_config(VendorItem.model_config)
class ArtifactMessage(TypedDict, total=False):
    role: str | None
    message: str | None
    time: float | None
    name: str | None
    result: str | None
    toolCalls: list[dict[str, Any]] | None  # the vendor's key, as sent


class MonoRecording(VendorModel):
    combined_url: str | None = Field(default=None, alias="combinedUrl")


class RecordingLinks(VendorModel):
    stereo_url: str | None = Field(default=None, alias="stereoUrl")
    mono: MonoRecording | None = None


class Artifact(VendorModel):
    messages: ObjectList[ArtifactMessage] | None = None
    transcript: str | None = None
    recording: RecordingLinks | None = None
    recording_url: str | None = Field(default=None, alias="recordingUrl")
    stereo_recording_url: str | None = Field(default=None, alias="stereoRecordingUrl")
    log_url: str | None = Field(default=None, alias="logUrl")


class Analysis(VendorModel):
    summary: str | None = None
    structured_data: Any = Field(default=None, alias="structuredData")
    success_evaluation: Any = Field(default=None, alias="successEvaluation")


class Message(VendorModel):
    type: str | None = None
    status: str | None = None
    ended_reason: str | None = Field(default=None, alias="endedReason")
    timestamp: Any = None  # ISO 8601 or epoch milliseconds, by SDK version
    call: CallInfo | None = None
    call_id: str | None = Field(default=None, alias="callId")
    assistant: Assistant | None = None
    customer: Number | None = None
    phone_number: Number | None = Field(default=None, alias="phoneNumber")
    artifact: Artifact | None = None
    analysis: Analysis | None = None
    messages: ObjectList[ArtifactMessage] | None = None
    cost: float | None = None
    costs: list[dict[str, Any]] | None = None
    started_at: str | None = Field(default=None, alias="startedAt")
    ended_at: str | None = Field(default=None, alias="endedAt")
    duration_seconds: float | None = Field(default=None, alias="durationSeconds")
    recording_url: str | None = Field(default=None, alias="recordingUrl")
    summary: str | None = None


class Envelope(VendorModel):
    message: Message | None = None


def _tool_entries(item: ArtifactMessage, at: str | None) -> list[dict[str, Any]]:
    if item.get("role") == "tool_call_result":
        return [{"role": "tool", "at": at, "tool": {"name": item.get("name"), "output": item.get("result")}}]
    entries = []
    for call in item.get("toolCalls") or []:
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            arguments = json.dumps(arguments, separators=(",", ":"))
        entries.append({"role": "tool", "at": at, "tool": {"name": function.get("name"), "arguments": arguments}})
    return entries


def _transcript(items: list[ArtifactMessage]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for item in items:
        role, at = item.get("role"), utc_iso(item.get("time"))
        if role in ("tool_calls", "tool_call_result"):
            entries.extend(_tool_entries(item, at))
        elif role in _ROLES:
            entries.append({"role": _ROLES[role], "text": item.get("message"), "at": at})
    return entries


def _recording_url(message: Message) -> str | None:
    artifact = message.artifact or Artifact()
    links = artifact.recording or RecordingLinks()
    mono = links.mono or MonoRecording()
    return (
        mono.combined_url or artifact.recording_url or message.recording_url or links.stereo_url or artifact.stereo_recording_url
    )


def _numbers(channel: Channel | None, customer: Number | None, ours: Number | None) -> tuple[str | None, str | None]:
    theirs, mine = (customer.e164 if customer else None), (ours.e164 if ours else None)
    if channel is Channel.INBOUND_PHONE:
        return theirs, mine
    if channel is Channel.OUTBOUND_PHONE:
        return mine, theirs
    return None, None


def _cost(message: Message, call: CallInfo) -> Cost | None:
    total = message.cost if message.cost is not None else call.cost
    breakdown = call.cost_breakdown or {}
    if total is None and not breakdown:
        return None
    return Cost(total_usd=total, breakdown=breakdown)


def parse(webhook: str, payload: Any, headers: Headers) -> ParsedEvent:
    envelope = parse_model(Envelope, payload)
    message = envelope.message or Message()
    call = message.call or CallInfo()
    event_type = message.type or "unknown"
    session_id = require_session_id(call.id or message.call_id)
    if event_type not in STORED_TYPES:
        return ParsedEvent(event_type=event_type, session_id=session_id, update=None)

    report = event_type == "end-of-call-report"
    status = Status.ENDED if report else _STATUS.get(message.status or "")
    if event_type == "conversation-update":
        status = Status.IN_PROGRESS  # the conversation is, by this message, under way
    channel = _CHANNEL.get(call.type or "")
    from_number, to_number = _numbers(channel, message.customer or call.customer, message.phone_number or call.phone_number)
    items = (message.artifact.messages if message.artifact else None) or message.messages
    assistant = message.assistant or Assistant()
    analysis = message.analysis or Analysis()
    update = SessionUpdate(
        status=status,
        channel=channel,
        agent=Agent(id=assistant.id or call.assistant_id, name=assistant.name)
        if assistant.id or call.assistant_id or assistant.name
        else None,
        from_number=from_number,
        to_number=to_number,
        created_at=utc_iso(call.created_at),
        started_at=utc_iso(message.started_at) or utc_iso(call.started_at),
        ended_at=utc_iso(message.ended_at) or utc_iso(call.ended_at),
        duration_seconds=message.duration_seconds,
        ended_reason=message.ended_reason or call.ended_reason,
        cost=_cost(message, call) if report else None,
        recording_url=_recording_url(message),
        transcript=transcript(_transcript(items)) if items is not None else None,
        summary=analysis.summary or message.summary,
        vendor_fields=compact(
            {
                "org_id": call.org_id,
                "structured_data": analysis.structured_data,
                "success_evaluation": analysis.success_evaluation,
                "costs": message.costs if report else None,
            }
        ),
    )
    return ParsedEvent(event_type=event_type, session_id=session_id, update=update)


def auth_scheme(config: Settings) -> tuple[auth.Verifier, ...]:
    return (
        auth.bearer(prefix_required=False),
        auth.secret_header("x-vapi-secret", "x-vapi-signature"),
        auth.hmac_timestamped("x-signature", "x-timestamp", config.hmac_tolerance_seconds),
    )


ADAPTER = VendorAdapter(
    vendor=VENDOR,
    webhooks=WEBHOOKS,
    auth_scheme=auth_scheme,
    parse=parse,
    # Signed with the Bearer credential: it does not expire, so saved sample events stay valid.
    sign=auth.bearer_headers,
)
