"""ElevenLabs (Agents platform): post-call webhooks, `{"type", "event_timestamp", "data"}`, on one route.

- `post_call_transcription`: the whole conversation once it is over and analysed: transcript,
  metadata (times, cost, termination reason, phone call), analysis (summary, success).
- `post_call_audio`: the whole call's MP3, base64, in the body (`data.full_audio`): the pipeline
  stores it as the session's recording, decoded on its way to S3. A call longer than about five
  minutes makes this body too large for API Gateway or Lambda, so a transcription (or a pulled
  conversation) that says `has_audio` makes the recording pending at the API's audio URL, which
  the copier fetches with the API key (DESIGN.md "Long calls' audio"); whichever comes first is it.
- `call_initiation_failure`: a call that never connected, with its reason.

Signed `ElevenLabs-Signature: t=<unix s>,v0=<hex HMAC-SHA256(secret, "{t}.{body}")>`; as the SDK's
`construct_event` checks, t may be no older than 30 minutes (a later t is not refused).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import quote

from pydantic import with_config
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from callvault import auth
from callvault.auth import AuthError, Headers
from callvault.config import Settings
from callvault.download import DownloadError
from callvault.jsonbody import load_json
from callvault.models import CallMetrics, Channel, Cost, SessionUpdate, Status, add_seconds, offset_seconds, utc_iso
from callvault.secrets import api_key_for
from callvault.vendor_api import ApiClient
from callvault.vendors.base import (
    EmbeddedRecording,
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
    agent,
    call_metrics,
    compact,
    cursor_pages,
    json_at,
    objects,
    parse_model,
    require_session_id,
)

VENDOR = "elevenlabs"
WEBHOOKS = frozenset({"post-call"})
SIGNATURE_HEADER = "elevenlabs-signature"
TOLERANCE_SECONDS = 30 * 60  # the SDK's construct_event
TRANSCRIPTION, AUDIO, INITIATION_FAILURE = "post_call_transcription", "post_call_audio", "call_initiation_failure"

# done, failed: the call is over. `processing` (only the API shows it; the webhook comes once the
# conversation is done): the call is over but its analysis is still being made, so the session
# stays open until `done` brings the summary (reconcile fetches it again then).
_STATUS = {"initiated": Status.QUEUED, "in-progress": Status.IN_PROGRESS, "processing": Status.IN_PROGRESS}
_UNDER_WAY = frozenset({"initiated", "in-progress"})  # no end time yet: the duration is the call's so far
_ROLES = {"agent": "assistant", "user": "user"}
_WEB_SOURCES = frozenset(
    {"android_sdk", "node_js_sdk", "react_native_sdk", "react_sdk", "js_sdk", "python_sdk", "widget", "swift_sdk", "flutter_sdk"}
)
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")  # the SDK compares lower-case hex as sent
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


# Typed dicts, not models: a long conversation has thousands of turns (see cozmox.ArtifactMessage).
@with_config(VendorItem.model_config)
class ToolCallItem(TypedDict, total=False):
    tool_name: str | None
    params_as_json: str | None


@with_config(VendorItem.model_config)
class ToolResultItem(TypedDict, total=False):
    tool_name: str | None
    result_value: str | None
    is_error: bool | None


@with_config(VendorItem.model_config)
class Turn(TypedDict, total=False):
    role: str | None
    message: str | None
    time_in_call_secs: float | None
    tool_calls: ObjectList[ToolCallItem] | None
    tool_results: ObjectList[ToolResultItem] | None


class PhoneCall(VendorModel):
    type: str | None = None
    direction: str | None = None
    agent_number: str | None = None
    external_number: str | None = None
    call_sid: str | None = None


class Metadata(VendorModel):
    start_time_unix_secs: float | None = None
    call_duration_secs: float | None = None
    cost: float | None = None  # ElevenLabs credits, not money
    cost_fiat: float | None = None  # USD
    termination_reason: str | None = None
    phone_call: PhoneCall | None = None
    conversation_initiation_source: str | None = None
    main_language: str | None = None
    sms: Any = None
    has_audio: bool | None = None  # not where ElevenLabs puts it (see Data), read there too: lenient


class Analysis(VendorModel):
    transcript_summary: str | None = None
    call_summary_title: str | None = None
    call_successful: str | None = None
    data_collection_results: dict[str, Any] | None = None
    evaluation_criteria_results: dict[str, Any] | None = None


class FailureMetadata(VendorModel):
    type: str | None = None
    body: dict[str, Any] | None = None


class Data(VendorModel):
    conversation_id: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    status: str | None = None
    user_id: str | None = None
    transcript: ObjectList[Turn] | None = None
    metadata: dict[str, Any] | None = None  # read as Metadata or FailureMetadata, by event type
    analysis: Analysis | None = None
    full_audio: str | None = None
    failure_reason: str | None = None
    has_audio: bool | None = None  # the SDK's GetConversationResponseModel; the webhook's data too


class Envelope(VendorModel):
    type: str | None = None
    event_timestamp: float | None = None
    data: Data | None = None


def _said(turn: Turn, calls: list[ToolCallItem], results: list[ToolResultItem]) -> bool:
    """Whether a turn makes an entry of what was said (a turn of tool calls alone does not)."""
    return turn.get("role") in _ROLES and (turn.get("message") is not None or not (calls or results))


def _turn_count(turns: list[Turn]) -> int:
    """How many entries `_transcript` makes of `turns`, without making them (the write needs no more)."""
    count = 0
    for turn in turns:
        calls, results = turn.get("tool_calls") or [], turn.get("tool_results") or []
        count += int(_said(turn, calls, results)) + len(calls) + len(results)
    return count


def _turns(turn: Turn, started: str | None) -> list[dict[str, Any]]:
    """One transcript turn: what was said, then the tools it called and what they answered."""
    offset = offset_seconds(turn.get("time_in_call_secs"))
    at = add_seconds(started, offset) if offset is not None else None
    entries: list[dict[str, Any]] = []
    role = turn.get("role")
    calls, results = turn.get("tool_calls") or [], turn.get("tool_results") or []
    if _said(turn, calls, results):
        entries.append({"role": _ROLES[role or ""], "text": turn.get("message"), "at": at, "seconds": offset})
    for call in calls:
        tool = {"name": call.get("tool_name"), "arguments": call.get("params_as_json")}
        entries.append({"role": "tool", "at": at, "seconds": offset, "tool": tool})
    for result in results:
        output = {"name": result.get("tool_name"), "output": result.get("result_value"), "is_error": bool(result.get("is_error"))}
        entries.append({"role": "tool", "at": at, "seconds": offset, "tool": output})
    return entries


def _transcript(turns: list[Turn], started: str | None) -> list[dict[str, Any]]:
    return [entry for turn in turns for entry in _turns(turn, started)]


def _channel_and_numbers(metadata: Metadata) -> tuple[Channel | None, str | None, str | None]:
    phone = metadata.phone_call
    if phone is not None:
        if phone.direction == "inbound":
            return Channel.INBOUND_PHONE, phone.external_number, phone.agent_number
        if phone.direction == "outbound":
            return Channel.OUTBOUND_PHONE, phone.agent_number, phone.external_number
        return Channel.UNKNOWN, None, None
    source = metadata.conversation_initiation_source
    if source in _WEB_SOURCES:
        return Channel.WEB, None, None
    if source == "twilio_sms" or metadata.sms:
        return Channel.SMS, None, None
    return None, None, None


def metrics_of(payload: Any) -> CallMetrics | None:
    """A conversation's interruptions: its agent turns marked `interrupted` (the SDK's transcript
    turn models). Its turns say when they began (`time_in_call_secs`) but not when they ended,
    and the names of `conversation_turn_metrics` are not documented: no talk time, no latency."""
    marked = [turn.get("interrupted") for turn in objects(json_at(payload, "data", "transcript")) if turn.get("role") == "agent"]
    told = [flag for flag in marked if type(flag) is bool]
    return call_metrics(interruptions=sum(told) if told else None)


def _transcription(
    data: Data, session_id: str, metrics: CallMetrics | None
) -> tuple[SessionUpdate, Callable[[], list[dict[str, Any]]] | None]:
    """The conversation's facts, and what builds its transcript's turns (when it has a transcript)."""
    metadata = parse_model(Metadata, data.metadata or {})
    analysis = data.analysis or Analysis()
    started = utc_iso(metadata.start_time_unix_secs)
    channel, from_number, to_number = _channel_and_numbers(metadata)
    credits = compact({"credits": metadata.cost})
    over = data.status not in _UNDER_WAY
    update = SessionUpdate(
        status=_STATUS.get(data.status or "", Status.ENDED),
        channel=channel,
        agent=agent(data.agent_id, data.agent_name),
        from_number=from_number,
        to_number=to_number,
        started_at=started,
        ended_at=add_seconds(started, metadata.call_duration_secs) if over else None,
        duration_seconds=metadata.call_duration_secs if over else None,
        ended_reason=metadata.termination_reason,
        cost=Cost(total_usd=metadata.cost_fiat, breakdown=credits) if metadata.cost_fiat is not None or credits else None,
        transcript_turns=_turn_count(data.transcript) if data.transcript is not None else None,
        summary=analysis.transcript_summary,
        metrics=metrics if over else None,
        # Whatever its length, the audio is had from the API (a long call's post_call_audio is refused).
        recording_url=audio_url(session_id) if data.has_audio or metadata.has_audio else None,
        vendor_fields=compact(
            {
                "call_successful": analysis.call_successful,
                "call_summary_title": analysis.call_summary_title,
                "data_collection_results": analysis.data_collection_results,
                "evaluation_criteria_results": analysis.evaluation_criteria_results,
                "conversation_status": data.status,
                "user_id": data.user_id,
                "main_language": metadata.main_language,
                "call_sid": metadata.phone_call.call_sid if metadata.phone_call else None,
                "telephony": metadata.phone_call.type if metadata.phone_call else None,
            }
        ),
    )
    return update, partial(_transcript, data.transcript, started) if data.transcript is not None else None


def _initiation_failure(data: Data) -> SessionUpdate:
    """A call that never connected: ended, with ElevenLabs' reason (busy, no-answer, unknown).
    Such calls are ones the agent placed; the provider's own report is kept as a vendor field."""
    failure = parse_model(FailureMetadata, data.metadata or {})
    body = failure.body or {}
    to_number, from_number = body.get("To"), body.get("From")  # Twilio's status callback, when it is one
    return SessionUpdate(
        status=Status.ENDED,
        channel=Channel.OUTBOUND_PHONE,
        agent=agent(data.agent_id, data.agent_name),
        from_number=from_number if isinstance(from_number, str) else None,
        to_number=to_number if isinstance(to_number, str) else None,
        ended_reason=data.failure_reason or "call_initiation_failure",
        vendor_fields=compact({"telephony": failure.type, "initiation_failure": failure.body}),
    )


def _audio(data: Data) -> tuple[SessionUpdate, EmbeddedRecording | None]:
    """The call is over (ElevenLabs sends its audio after it); the audio itself is the recording."""
    audio = data.full_audio or ""
    if audio and (len(audio) % 4 or not _BASE64.fullmatch(audio)):
        raise PayloadError("full_audio is not base64")
    update = SessionUpdate(status=Status.ENDED, agent=agent(data.agent_id, data.agent_name))
    return update, EmbeddedRecording(audio, "audio/mpeg") if audio else None


def parse(webhook: str, payload: Any, headers: Headers) -> ParsedEvent:
    envelope = parse_model(Envelope, payload)
    data = envelope.data or Data()
    event_type = envelope.type or "unknown"
    session_id = require_session_id(data.conversation_id)
    if event_type == TRANSCRIPTION:
        update, transcript = _transcription(data, session_id, metrics_of(payload))
        return ParsedEvent(event_type, session_id, update, transcript=transcript)
    if event_type == INITIATION_FAILURE:
        return ParsedEvent(event_type, session_id, _initiation_failure(data))
    if event_type == AUDIO:
        update, recording = _audio(data)
        return ParsedEvent(event_type, session_id, update, recording=recording)
    return ParsedEvent(event_type, session_id, None)


def elevenlabs_signature(clock: Callable[[], float] = time.time) -> auth.Verifier:
    """`ElevenLabs-Signature` as the SDK's `construct_event` checks it; any `v0=` may match any secret
    (a header carrying two signatures during a rotation)."""

    def verify(headers: Headers, body: bytes, secrets: Sequence[bytes]) -> bool | None:
        header = headers.get(SIGNATURE_HEADER)
        if header is None:
            return None
        parts = [part.strip() for part in header.split(",")]
        stamps = [part[2:] for part in parts if part.startswith("t=")]
        digests = [part[3:] for part in parts if part.startswith("v0=")]
        stamp = stamps[-1] if stamps else ""
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12) or not digests:
            raise AuthError("malformed signature")
        if int(stamp) < clock() - TOLERANCE_SECONDS:
            raise AuthError("stale timestamp")
        message = stamp.encode() + b"." + body
        for digest in digests:
            if _HEX_DIGEST.fullmatch(digest) and auth.hmac_matches(bytes.fromhex(digest), message, secrets):
                return True
        raise AuthError("invalid signature")

    return verify


def sign(body: bytes, secret: str) -> dict[str, str]:
    """The header ElevenLabs sends with `body`, signed now with `secret`."""
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"ElevenLabs-Signature": f"t={stamp},v0={digest}"}


def auth_scheme(config: Settings) -> tuple[auth.Verifier, ...]:
    return (elevenlabs_signature(),)


# -- the API reconcile pulls from (the `elevenlabs` SDK's conversational_ai.conversations: `list`, `get`)
#
# `GET /v1/convai/conversations?call_start_after_unix&call_start_before_unix&page_size&cursor`
# (newest first) answers `{"conversations": [summary...], "has_more", "next_cursor"}`;
# `GET /v1/convai/conversations/{conversation_id}` is the whole conversation (transcript, metadata,
# analysis): exactly the `data` of the `post_call_transcription` webhook. Key in `xi-api-key`.
# `GET .../{conversation_id}/audio` is the call's audio (audio/mpeg): the recording copier fetches it.

PUBLIC_API_URL = "https://api.elevenlabs.io"
PAGE_SIZE = 100  # the API's largest


def api_url() -> str:
    """The ElevenLabs API's base URL: `CALLVAULT_API_URL_ELEVENLABS` (the template sets it from
    ElevenlabsApiUrl; locally the same variable reconcile uses), else the public API."""
    return (os.environ.get("CALLVAULT_API_URL_ELEVENLABS") or PUBLIC_API_URL).rstrip("/")


def audio_url(conversation_id: str) -> str:
    """Where the API serves a conversation's audio: the session's recording link."""
    return f"{api_url()}/v1/convai/conversations/{quote(conversation_id, safe='')}/audio"


def recording_fetch(session_id: str, url: str) -> Fetch:
    """The conversation's audio URL of the configured API is fetched with the API key (`xi-api-key`,
    sent to that URL only, never where it redirects); any other link as it is. No key configured:
    a permanent failure that says so, rather than a request bound to be refused."""
    if url != audio_url(session_id):
        return Fetch(url)
    key = api_key_for(VENDOR)
    if not key:
        where = "the ElevenlabsApiKeySecret secret; locally CALLVAULT_API_KEY_ELEVENLABS"
        raise DownloadError(f"no ElevenLabs API key ({where})", permanent=True)
    return Fetch(url, _auth_headers(key))


def _auth_headers(key: str) -> dict[str, str]:
    return {"xi-api-key": key}


class ListedConversation(VendorItem):
    conversation_id: str | None = None
    status: str | None = None


class ConversationsPage(VendorModel):
    conversations: ObjectList[ListedConversation] | None = None
    has_more: bool | None = None
    next_cursor: str | None = None


def _unix(moment: str) -> float:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


def list_pages(client: ApiClient, since: str, until: str) -> Iterator[list[Listed]]:
    """Pages of `GET /v1/convai/conversations` for conversations started from `since` to `until`
    (whole seconds, widened to cover both ends), cursor to cursor, to the last."""
    window = {"call_start_after_unix": math.floor(_unix(since)) - 1, "call_start_before_unix": math.ceil(_unix(until))}

    def request(cursor: str | None) -> tuple[list[Listed], bool, str | None]:
        body = client.request("GET", "/v1/convai/conversations", {**window, "page_size": PAGE_SIZE, "cursor": cursor})
        page = parse_model(ConversationsPage, load_json(body))
        items = page.conversations or []
        listed = [
            Listed(session_id=require_session_id(item.conversation_id), status=_STATUS.get(item.status or "", Status.ENDED))
            for item in items
            if item.conversation_id
        ]
        return listed, bool(page.has_more and items), page.next_cursor

    return cursor_pages(request, "GET /v1/convai/conversations")


def parse_conversation(payload: Any) -> ParsedEvent:
    """A conversation as the API returns it: the `data` of `post_call_transcription`, one mapping."""
    if not isinstance(payload, dict):
        raise PayloadError(f"expected a JSON object, got {type(payload).__name__}")
    return parse("pull", {"type": TRANSCRIPTION, "data": payload}, {})


def fetch(client: ApiClient, listed: Listed) -> Pulled:
    """`GET /v1/convai/conversations/{conversation_id}`: the whole conversation."""
    path = f"/v1/convai/conversations/{quote(listed.session_id, safe='')}"
    return Pulled(body=client.request("GET", path), parse=parse_conversation)


RECONCILER = Reconciler(
    public_url=PUBLIC_API_URL,
    url_hint=f"CALLVAULT_API_URL_ELEVENLABS (default {PUBLIC_API_URL})",
    auth_headers=_auth_headers,
    list_pages=list_pages,
    fetch=fetch,
    parse=parse_conversation,
)

ADAPTER = VendorAdapter(
    vendor=VENDOR,
    webhooks=WEBHOOKS,
    auth_scheme=auth_scheme,
    parse=parse,
    sign=sign,
    recording_fetch=recording_fetch,
    reconciler=RECONCILER,
)
