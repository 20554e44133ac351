"""agentsessions: `session.*` events, `{"type", "idempotencyKey", "data": {session}}`.

The vendor's docs say "v0 – everything is subject to change": every field is optional here
and unknown ones are kept. Its `idempotencyKey` is the event id. Bearer authentication.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import Field

from callvault import auth
from callvault.auth import Headers
from callvault.config import Settings
from callvault.models import Agent, Channel, SessionUpdate, Status, seconds_between, utc_iso
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

VENDOR = "agentsessions"
WEBHOOKS = frozenset({"session-completed"})

_TYPE_STATUS = {"session.completed": Status.ENDED, "session.ended": Status.ENDED, "session.started": Status.IN_PROGRESS}
_STATUS = {
    "PENDING": Status.QUEUED,
    "QUEUED": Status.QUEUED,
    "RINGING": Status.RINGING,
    "ACTIVE": Status.IN_PROGRESS,
    "IN_PROGRESS": Status.IN_PROGRESS,
    "STARTED": Status.IN_PROGRESS,
    "COMPLETED": Status.ENDED,
    "ENDED": Status.ENDED,
    "FAILED": Status.ENDED,
    "CANCELLED": Status.ENDED,
}
_CHANNEL = {
    "INBOUND_CALL": Channel.INBOUND_PHONE,
    "OUTBOUND_CALL": Channel.OUTBOUND_PHONE,
    "WEB_CALL": Channel.WEB,
    "WEB": Channel.WEB,
    "SMS": Channel.SMS,
}


class Person(VendorModel):
    phone: str | None = None


class AgentInfo(VendorModel):
    id: str | None = None
    name: str | None = None


class MessageContent(VendorItem):
    role: str | None = None
    content: str | None = None


class ToolMetadata(VendorItem):
    tool_name: str | None = Field(default=None, alias="toolName")
    arguments: str | None = None
    output: str | None = None
    status: str | None = None


class SessionMessage(VendorItem):
    sequence_number: int | None = Field(default=None, alias="sequenceNumber")
    created_at: str | None = Field(default=None, alias="createdAt")
    content: MessageContent | None = None
    extra_metadata: ToolMetadata | None = Field(default=None, alias="extraMetadata")


class Billing(VendorModel):
    amount: float | None = None
    reason: str | None = None


class CompletedMeta(VendorModel):
    trace_id: str | None = Field(default=None, alias="traceId")


class SessionData(VendorModel):
    id: str | None = None
    name: str | None = None
    type: str | None = None
    status: str | None = None
    created_at: str | None = Field(default=None, alias="createdAt")
    started_at: str | None = Field(default=None, alias="startedAt")
    ended_at: str | None = Field(default=None, alias="endedAt")
    completed_at: str | None = Field(default=None, alias="completedAt")
    record_audio: bool | None = Field(default=None, alias="recordAudio")
    is_demo: bool | None = Field(default=None, alias="isDemo")
    agent_id: str | None = Field(default=None, alias="agentId")
    agent_version_id: str | None = Field(default=None, alias="agentVersionId")
    workspace_id: str | None = Field(default=None, alias="workspaceId")
    person_id: str | None = Field(default=None, alias="personId")
    conversation_id: str | None = Field(default=None, alias="conversationId")
    person: Person | None = None
    agent: AgentInfo | None = None
    messages: ObjectList[SessionMessage] | None = None
    billing: Billing | None = None
    completed_meta: CompletedMeta | None = Field(default=None, alias="completedMeta")


class Envelope(VendorModel):
    type: str | None = None
    idempotency_key: str | None = Field(default=None, alias="idempotencyKey")
    data: SessionData | None = None


def _entry(message: SessionMessage) -> dict[str, Any]:
    content = message.content or MessageContent()
    meta = message.extra_metadata
    at = utc_iso(message.created_at)
    if meta is not None and meta.tool_name:
        tool = {
            "name": meta.tool_name,
            "arguments": meta.arguments,
            "output": meta.output,
            "is_error": (meta.status or "").lower() in ("error", "failed", "failure"),
        }
        return {"role": "tool", "text": content.content, "at": at, "tool": tool}
    role = (content.role or "").lower()
    return {"role": role if role in ("user", "assistant", "system", "tool") else "system", "text": content.content, "at": at}


def _transcript(messages: list[SessionMessage]) -> list[dict[str, Any]]:
    return [_entry(message) for message in messages]


def parse(webhook: str, payload: Any, headers: Headers) -> ParsedEvent:
    envelope = parse_model(Envelope, payload)
    data = envelope.data or SessionData()
    session_id = require_session_id(data.id)
    event_type = envelope.type or "session.completed"
    channel = _CHANNEL.get(data.type or "")
    phone = data.person.phone if data.person else None
    started_at = utc_iso(data.started_at)
    ended_at = utc_iso(data.ended_at) or utc_iso(data.completed_at)
    messages = (
        sorted(data.messages, key=lambda m: m.sequence_number if m.sequence_number is not None else 0)
        if data.messages is not None
        else None
    )
    agent = data.agent or AgentInfo()
    billing = data.billing
    update = SessionUpdate(
        status=_TYPE_STATUS.get(event_type) or _STATUS.get((data.status or "").upper()),
        channel=channel,
        agent=Agent(id=data.agent_id or agent.id, name=agent.name) if data.agent_id or agent.id or agent.name else None,
        # The person is the far end: the caller on an inbound call, the callee on an outbound one.
        from_number=phone if channel is Channel.INBOUND_PHONE else None,
        to_number=phone if channel is Channel.OUTBOUND_PHONE else None,
        created_at=utc_iso(data.created_at),
        started_at=started_at,
        ended_at=ended_at,
        duration_seconds=seconds_between(started_at, ended_at),
        transcript_turns=len(messages) if messages is not None else None,  # one turn a message
        vendor_fields=compact(
            {
                "name": data.name,
                "workspace_id": data.workspace_id,
                "conversation_id": data.conversation_id,
                "person_id": data.person_id,
                "agent_version_id": data.agent_version_id,
                "record_audio": data.record_audio,
                "is_demo": data.is_demo,
                # A ledger entry in the vendor's own units, not a USD cost: kept, not mapped.
                "billing": compact({"amount": billing.amount, "reason": billing.reason}) if billing else None,
                "trace_id": data.completed_meta.trace_id if data.completed_meta else None,
            }
        ),
    )
    key = envelope.idempotency_key.strip() if envelope.idempotency_key else None
    built = partial(_transcript, messages) if messages is not None else None
    return ParsedEvent(event_type, session_id, update, vendor_event_id=key or None, transcript=built)


def auth_scheme(config: Settings) -> tuple[auth.Verifier, ...]:
    return (auth.bearer(),)


ADAPTER = VendorAdapter(vendor=VENDOR, webhooks=WEBHOOKS, auth_scheme=auth_scheme, parse=parse, sign=auth.bearer_headers)
