"""Vapi server messages, `{"message": {"type": ..., "call": {...}}}`: the format cozmox speaks
too (callvault/vendors/cozmox.py is this adapter under its own name).

One route takes every message type. Call-lifecycle messages are stored; messages that ask the
receiver for an answer (tool calls, transfers, assistant and knowledge-base requests), the
chatty real-time ones and account notices are acknowledged as `ignored`, their raw payload
archived all the same. Each type Vapi's SDK knows is in one of the two sets on purpose.

Vapi's own recording storage (storage.vapi.ai) is becoming private: such a link is fetched
through the call's authenticated recording endpoint with the account's private API key, which
answers with a redirect to a short-lived URL.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from functools import partial
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import Field, with_config
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from callvault import auth
from callvault.auth import Headers
from callvault.config import Settings
from callvault.jsonbody import load_json
from callvault.models import Agent, CallMetrics, Channel, Cost, SessionUpdate, Status, number, offset_seconds, utc_iso
from callvault.secrets import api_key_for
from callvault.vendor_api import ApiClient, ApiError
from callvault.vendors.base import (
    NUMBER_TYPES,
    Fetch,
    Listed,
    ObjectList,
    ParsedEvent,
    PayloadError,
    Pulled,
    Reconciler,
    VendorAdapter,
    VendorItem,
    VendorModel,
    call_metrics,
    compact,
    json_at,
    objects,
    parse_model,
    percentile,
    require_session_id,
)

VENDOR = "vapi"
WEBHOOKS = frozenset({"server-messages"})
# The call's lifecycle and content: stored.
STORED_TYPES = frozenset({"status-update", "end-of-call-report", "conversation-update", "hang", "transfer-update"})
# Archived and answered `ignored`, each for a reason:
ACKNOWLEDGED_TYPES = frozenset(
    {
        # requests for an answer callvault does not give (the assistant's own server answers them)
        "assistant-request",
        "tool-calls",
        "function-call",  # the older name of tool-calls
        "transfer-destination-request",
        "handoff-destination-request",
        "knowledge-base-request",
        "voice-request",
        "call.endpointing.request",
        "phone-call-control",
        "campaign.predial",
        # real-time chatter: its content arrives whole in conversation-update / end-of-call-report
        "speech-update",
        "transcript",
        'transcript[transcriptType="final"]',
        "model-output",
        "user-interrupted",
        "voice-input",
        "assistant.speechStarted",
        "language-change-detected",
        # about chats, sessions and the account's stored data, not about a call's content
        "chat.created",
        "chat.deleted",
        "session.created",
        "session.updated",
        "session.deleted",
        "call.deleted",
        "call.delete.failed",
        "call.artifact.upload",
    }
)

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


# Typed dicts, not models: a long call has thousands of turns, and this is 2.5x cheaper.
@with_config(VendorItem.model_config)
class ToolFunction(TypedDict, total=False):
    name: str | None
    arguments: Any  # a JSON string, as documented; an object is kept as compact JSON


@with_config(VendorItem.model_config)
class ToolCall(TypedDict, total=False):
    function: ToolFunction | None


@with_config(VendorItem.model_config)
class ArtifactMessage(TypedDict, total=False):
    role: str | None
    message: str | None
    time: float | None
    secondsFromStart: float | None  # the vendor's key, as sent
    name: str | None
    result: str | None
    toolCalls: list[ToolCall] | None  # the vendor's key, as sent


class MonoRecording(VendorModel):
    combined_url: str | None = Field(default=None, alias="combinedUrl")


class RecordingLinks(VendorModel):
    stereo_url: str | None = Field(default=None, alias="stereoUrl")
    mono: MonoRecording | None = None


# The write reads a transcript's turns as they came (objects only): it counts them (`_scan`,
# which reads them as their validation would) and leaves validating each to the read that builds them.
class Artifact(VendorModel):
    messages: ObjectList[Any] | None = None
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
    messages: ObjectList[Any] | None = None
    cost: float | None = None
    costs: list[dict[str, Any]] | None = None
    started_at: str | None = Field(default=None, alias="startedAt")
    ended_at: str | None = Field(default=None, alias="endedAt")
    duration_seconds: float | None = Field(default=None, alias="durationSeconds")
    recording_url: str | None = Field(default=None, alias="recordingUrl")
    summary: str | None = None


class _Turns(VendorModel):
    """A transcript's turns validated as the read builds them (a bad field is read as absent)."""

    items: list[ArtifactMessage]


class Envelope(VendorModel):
    message: Message | None = None


def _tool_entries(item: ArtifactMessage, at: str | None, seconds: float | None) -> list[dict[str, Any]]:
    if item.get("role") == "tool_call_result":
        return [{"role": "tool", "at": at, "seconds": seconds, "tool": {"name": item.get("name"), "output": item.get("result")}}]
    entries = []
    for call in item.get("toolCalls") or []:
        function = call.get("function") or ToolFunction()
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            arguments = json.dumps(arguments, separators=(",", ":"))
        entries.append(
            {"role": "tool", "at": at, "seconds": seconds, "tool": {"name": function.get("name"), "arguments": arguments}}
        )
    return entries


def _turns_are_spoken(payload: Any) -> bool:
    """Whether the turns a parse reads are the objects among the messages talk time is read from:
    the artifact's when they hold an object, the message's own when the artifact has none."""
    message = json_at(payload, "message")
    artifact_messages = json_at(message, "artifact", "messages")
    if type(artifact_messages) is list and any(type(item) is dict for item in artifact_messages):
        return True
    return not artifact_messages and type(json_at(message, "messages")) is list


def _transcript(raw_items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for item in parse_model(_Turns, {"items": raw_items}).items:
        role, at, seconds = item.get("role"), utc_iso(item.get("time")), offset_seconds(item.get("secondsFromStart"))
        if role in ("tool_calls", "tool_call_result"):
            entries.extend(_tool_entries(item, at, seconds))
        elif role in _ROLES:
            entries.append({"role": _ROLES[role], "text": item.get("message"), "at": at, "seconds": seconds})
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


def _talk_time(messages: list[Any]) -> tuple[float | None, float | None]:
    """Seconds the agent and the customer spoke: each spoken message's `endTime - time` (epoch
    milliseconds, or seconds)."""
    return _scan(messages)[1:]


def _scan(messages: list[Any]) -> tuple[int, float | None, float | None]:
    """How many turns `_transcript` makes of the objects among `messages`, without validating or
    making them (a role that is not a string, or tool calls that are not a list, would be read as
    absent; a tool call that is not an object is dropped), and their `_talk_time`: one tight pass,
    as a report carries every message of the call."""
    count = 0
    spoken = {"user": 0.0, "bot": 0.0, "assistant": 0.0}
    timed: set[str] = set()
    for item in messages:
        if type(item) is not dict or type(role := item.get("role")) is not str:
            continue
        if role in spoken:
            count += 1
            start: Any = item.get("time")
            end: Any = item.get("endTime")
            if type(start) in NUMBER_TYPES and type(end) in NUMBER_TYPES and -math.inf < start <= end < math.inf:
                spoken[role] += (end - start) / 1000 if start >= 1e11 else end - start
                timed.add(role)
        elif role == "tool_calls":
            calls = item.get("toolCalls")
            if type(calls) is list:
                for call in calls:  # a loop: `sum` over a generator costs twice as much on a call or two
                    if type(call) is dict:
                        count += 1
        elif role == "tool_call_result" or role in _ROLES:
            count += 1
    agent = round(spoken["bot"] + spoken["assistant"], 3) if timed - {"user"} else None
    return count, agent, round(spoken["user"], 3) if "user" in timed else None


def _spoken_messages(payload: Any) -> Any:
    """The messages talk time is read from: the artifact's, else the message's own."""
    message = json_at(payload, "message")
    return json_at(message, "artifact", "messages") or json_at(message, "messages")


def metrics_of(payload: Any, talk_time: tuple[float | None, float | None] | None = None) -> CallMetrics | None:
    """An end-of-call report's metrics (the SDK's `Artifact.performanceMetrics`, a
    `PerformanceMetrics`): latency percentiles over `turnLatencies[].turnLatency` (milliseconds),
    interruptions from `numAssistantInterrupted` ("the number of times the assistant was
    interrupted by the user"), and talk time from each spoken message's `time` and `endTime`
    (`talk_time` when the caller has it)."""
    message = json_at(payload, "message")
    performance = json_at(message, "artifact", "performanceMetrics")
    turns = objects(json_at(performance, "turnLatencies"))
    latencies = [n for turn in turns if (n := number(turn.get("turnLatency"))) is not None]
    interrupted = number(json_at(performance, "numAssistantInterrupted"))
    if talk_time is None:
        messages = _spoken_messages(payload)
        talk_time = _talk_time(messages if isinstance(messages, list) else [])
    agent_seconds, customer_seconds = talk_time
    return call_metrics(
        interruptions=int(interrupted) if interrupted is not None and interrupted >= 0 else None,
        latency_p50_ms=percentile(latencies, 0.5),
        latency_p90_ms=percentile(latencies, 0.9),
        agent_talk_seconds=agent_seconds,
        customer_talk_seconds=customer_seconds,
    )


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
    turns, talk_time = None, None
    if items is not None:  # counted, not built (`_transcript`, for the read); a report's talk time in the same pass
        spoken = report and _turns_are_spoken(payload)
        turns, agent_seconds, customer_seconds = _scan(_spoken_messages(payload) if spoken else items)
        talk_time = (agent_seconds, customer_seconds) if spoken else None
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
        transcript_turns=turns,
        summary=analysis.summary or message.summary,
        metrics=metrics_of(payload, talk_time) if report else None,
        vendor_fields=compact(
            {
                "org_id": call.org_id,
                "structured_data": analysis.structured_data,
                "success_evaluation": analysis.success_evaluation,
                "costs": message.costs if report else None,
            }
        ),
    )
    built = partial(_transcript, items) if items is not None else None
    return ParsedEvent(event_type=event_type, session_id=session_id, update=update, transcript=built)


# Vapi's API, where its private recordings are fetched (and, locally, a fake of it).
API_URL = "https://api.vapi.ai"
STORAGE_HOST = "storage.vapi.ai"
# A storage link's file name ends with the recording's kind (`...-stereo.wav`); mono otherwise.
_RECORDING_KINDS = ("stereo", "customer", "assistant")


def api_url() -> str:
    return (os.environ.get("CALLVAULT_API_URL_VAPI") or API_URL).rstrip("/")


def recording_fetch(session_id: str, url: str) -> Fetch:
    """A storage.vapi.ai link is fetched as `GET {api}/call/{id}/{kind}-recording` with the private
    API key (a 302 to a short-lived URL follows); any other link, or no key configured, as it is."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host != STORAGE_HOST and not host.endswith("." + STORAGE_HOST):
        return Fetch(url)
    key = api_key_for(VENDOR)
    if key is None:
        return Fetch(url)  # the public link still answers until Vapi makes storage private
    stem = parts.path.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
    kind = next((k for k in _RECORDING_KINDS if stem.endswith(f"-{k}")), "mono")
    return Fetch(f"{api_url()}/call/{quote(session_id, safe='')}/{kind}-recording", {"Authorization": f"Bearer {key}"})


def auth_scheme(config: Settings) -> tuple[auth.Verifier, ...]:
    return (
        auth.bearer(prefix_required=False),
        auth.secret_header("x-vapi-secret", "x-vapi-signature"),
        auth.hmac_timestamped("x-signature", "x-timestamp", config.hmac_tolerance_seconds),
    )


# -- the API reconcile pulls from (the `vapi-server-sdk`'s CallsClient: `list`, `get`)
#
# `GET /call?createdAtGe&createdAtLt|createdAtLe&limit` answers a JSON list of Call objects, newest
# first, with no cursor: the next page is asked for below the oldest call of the last one
# (`createdAtLe` its createdAt, the calls of that instant already seen skipped; `createdAtLt` when a
# whole page shares one instant). `GET /call/{id}` is the whole call: the same Call a server
# message carries as `call`, with its `artifact` (transcript, recording) and `analysis`.

PAGE_LIMIT = 100  # the API's default, so the API gives it whole


class ListedCall(VendorItem):
    id: str | None = None
    status: str | None = None
    created_at: str | None = Field(default=None, alias="createdAt")


def _listed_calls(body: bytes) -> list[ListedCall]:
    payload = load_json(body)
    if not isinstance(payload, list):
        raise ApiError(f"GET /call answered {type(payload).__name__}, not a list of calls")
    return [parse_model(ListedCall, item) for item in payload if isinstance(item, dict)]


def list_pages(client: ApiClient, since: str, until: str) -> Iterator[list[Listed]]:
    """Pages of `GET /call` from `until` down to `since`, newest first, to the first empty page."""
    upper: dict[str, str] = {"createdAtLt": until}
    seen: set[str] = set()  # the calls of the boundary instant, listed already
    while True:
        calls = _listed_calls(client.request("GET", "/call", {"createdAtGe": since, **upper, "limit": PAGE_LIMIT}))
        stamps = [utc_iso(call.created_at) for call in calls]
        if any(stamp is None for stamp in stamps):
            raise ApiError("GET /call: a call without createdAt, so the listing cannot go on below it")
        ordered = [stamp for stamp in stamps if stamp is not None]
        if ordered != sorted(ordered, reverse=True):  # pages below the oldest would skip calls
            raise ApiError("GET /call: calls not newest first")
        fresh = [call for call in calls if call.id and call.id not in seen]
        yield [Listed(session_id=require_session_id(call.id), status=_STATUS.get(call.status or "")) for call in fresh]
        if not calls:
            return
        oldest, bound = ordered[-1], calls[-1].created_at or ""  # the bound as Vapi wrote it, to the digit
        if fresh:
            upper = {"createdAtLe": bound}
            seen = {call.id for call, stamp in zip(calls, ordered, strict=True) if stamp == oldest and call.id}
        else:  # nothing but the boundary instant's calls again: go below it
            upper, seen = {"createdAtLt": bound}, set()


def parse_call(payload: Any) -> ParsedEvent:
    """A Call as the API returns it, read as the server message that carries it: an
    end-of-call-report once it has ended (artifact, analysis, costs as the report has them), else a
    status-update. One mapping (`parse`): the session is the one the webhooks would have made."""
    if not isinstance(payload, dict):
        raise PayloadError(f"expected a JSON object, got {type(payload).__name__}")
    ended = payload.get("status") == "ended"
    message: dict[str, Any] = {"type": "end-of-call-report" if ended else "status-update", "call": payload}
    for key in ("status", "endedReason", "artifact", "analysis", "customer", "phoneNumber", "assistant", "messages"):
        if key in payload:
            message[key] = payload[key]
    if ended:
        message |= {key: payload[key] for key in ("cost", "costs", "startedAt", "endedAt") if key in payload}
    return parse("pull", {"message": message}, {})


def fetch(client: ApiClient, listed: Listed) -> Pulled:
    """`GET /call/{id}`: the whole call."""
    return Pulled(body=client.request("GET", f"/call/{quote(listed.session_id, safe='')}"), parse=parse_call)


RECONCILER = Reconciler(
    public_url=API_URL,
    url_hint=f"CALLVAULT_API_URL_VAPI (default {API_URL})",
    auth_headers=lambda key: {"Authorization": f"Bearer {key}"},
    list_pages=list_pages,
    fetch=fetch,
    parse=parse_call,
)


ADAPTER = VendorAdapter(
    vendor=VENDOR,
    webhooks=WEBHOOKS,
    auth_scheme=auth_scheme,
    parse=parse,
    # Signed with the Bearer credential: it does not expire, so saved sample events stay valid.
    sign=auth.bearer_headers,
    recording_fetch=recording_fetch,
    reconciler=RECONCILER,
)
