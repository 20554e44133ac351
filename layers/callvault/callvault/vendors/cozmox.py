"""cozmox: server messages in Vapi's format, `{"message": {"type": ..., "call": {...}}}`.

One route takes every message type. Call-lifecycle messages are stored; messages that ask the
receiver for an answer (tool calls, transfers, assistant and knowledge-base requests) and the
chatty real-time ones are acknowledged as `ignored`, their raw payload archived all the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from pydantic import Field, with_config
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from callvault import auth
from callvault.auth import Headers
from callvault.config import Settings
from callvault.ingest import load_json
from callvault.models import Agent, Channel, Cost, SessionUpdate, Status, seconds_between, transcript, utc_iso
from callvault.vendor_api import ApiClient
from callvault.vendors.base import (
    Listed,
    ObjectList,
    ParsedEvent,
    Pulled,
    Reconciler,
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


# -- the API reconcile pulls from
#
# The starting document's API (api.cozmox.ai, Vapi's shapes) documents `GET /session/{id}`: a
# chat session (status active|completed, messages), fetched by an id one must already know; no
# call listing is published for it. cozmox's calls API (docs.cozmox.ai "List calls", the
# `cozmoxai` SDK: CallsResource, CallListResponse, CallRetrieveResponse) does list calls:
# `GET {base}/calls?start_date&end_date&page&size` -> `{"data": [...], "meta": {"page", "size",
# "total", "total_pages"}}` and `GET {base}/calls/{id}`, with `X-API-Key` (the docs) or Bearer
# (the SDK): both are sent. Its base URL carries the organization:
# https://v2-nova-api.prod.czmx.in/api/org/{org_id}, so it must be configured.

API_URL_HINT = (
    "set CALLVAULT_API_URL_COZMOX (in AWS, the CozmoxApiUrl parameter) to https://v2-nova-api.prod.czmx.in/api/org/<org_id>"
)
PAGE_SIZE = 100  # the API's largest
_CALL_STATUS = {
    "scheduled": Status.QUEUED,
    "ringing": Status.RINGING,
    "in_progress": Status.IN_PROGRESS,
    "completed": Status.ENDED,
    "no-answer": Status.ENDED,
    "failed": Status.ENDED,
    "busy": Status.ENDED,
}
_FAILED_STATUSES = frozenset({"no-answer", "failed", "busy"})
_DIRECTION = {"inbound": Channel.INBOUND_PHONE, "outbound": Channel.OUTBOUND_PHONE}


class ListedCall(VendorItem):
    id: str | None = None
    status: str | None = None


class CallsMeta(VendorModel):
    page: int | None = None
    total_pages: int | None = None


class CallsPage(VendorModel):
    data: ObjectList[ListedCall] | None = None
    meta: CallsMeta | None = None


class ApiCall(VendorModel):
    """`GET /calls/{id}` (the SDK's CallRetrieveResponse): the fields callvault maps."""

    id: str | None = None
    status: str | None = None
    direction: str | None = None
    call_type: str | None = None
    agent_name: str | None = None
    initial_agent_id: str | None = None
    organization_id: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    scheduled_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration_seconds: float | None = None
    cost_usd: float | None = None
    recording_url: str | None = None
    summary: str | None = None
    prospect_id: str | None = None
    workflow_run_id: str | None = None


def _call_status(value: str | None) -> Status | None:
    return _CALL_STATUS.get((value or "").lower())


def parse_api_call(payload: Any) -> ParsedEvent:
    """A call as the calls API returns it, mapped to the same session fields a server message
    fills (the shapes differ: this API names things its own way)."""
    call = parse_model(ApiCall, payload)
    session_id = require_session_id(call.id)
    status = (call.status or "").lower()
    started_at, ended_at = utc_iso(call.started_at), utc_iso(call.ended_at)
    update = SessionUpdate(
        status=_call_status(status),
        channel=_DIRECTION.get((call.direction or "").lower()),
        agent=Agent(id=call.initial_agent_id, name=call.agent_name) if call.initial_agent_id or call.agent_name else None,
        from_number=call.from_number,
        to_number=call.to_number,
        started_at=started_at,
        ended_at=ended_at,
        duration_seconds=call.duration_seconds if call.duration_seconds is not None else seconds_between(started_at, ended_at),
        ended_reason=status if status in _FAILED_STATUSES else None,
        cost=Cost(total_usd=call.cost_usd) if call.cost_usd is not None else None,
        recording_url=call.recording_url or None,
        summary=call.summary,
        vendor_fields=compact(
            {
                "org_id": call.organization_id,
                "call_type": call.call_type,
                "scheduled_at": utc_iso(call.scheduled_at),
                "prospect_id": call.prospect_id,
                "workflow_run_id": call.workflow_run_id,
            }
        ),
    )
    return ParsedEvent(event_type=f"call:{status or 'unknown'}", session_id=session_id, update=update)


def list_pages(client: ApiClient, since: str, until: str) -> Iterator[list[Listed]]:
    """Pages of `GET /calls?start_date&end_date&page&size`, from page 1 to `meta.total_pages`."""
    page_number = 1
    while True:
        body = client.request("GET", "/calls", {"start_date": since, "end_date": until, "page": page_number, "size": PAGE_SIZE})
        page = parse_model(CallsPage, load_json(body))
        items = page.data or []
        yield [Listed(session_id=require_session_id(item.id), status=_call_status(item.status)) for item in items if item.id]
        total = page.meta.total_pages if page.meta else None
        if not items or total is None or page_number >= total:
            return
        page_number += 1


def fetch(client: ApiClient, listed: Listed) -> Pulled:
    """`GET /calls/{id}`: the whole call, recording URL and summary included."""
    return Pulled(body=client.request("GET", f"/calls/{quote(listed.session_id, safe='')}"), parse=parse_api_call)


RECONCILER = Reconciler(
    public_url=None,
    url_hint=API_URL_HINT,
    auth_headers=lambda key: {"X-API-Key": key, "Authorization": f"Bearer {key}"},
    list_pages=list_pages,
    fetch=fetch,
    parse=parse_api_call,
)


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
    reconciler=RECONCILER,
)
