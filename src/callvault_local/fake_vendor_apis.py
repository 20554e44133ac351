"""Loopback fakes of the vendors' own APIs, for reconcile's tests and for trying it by hand
(`callvault fake-api --vendor voiceos`).

Each speaks its vendor's documented shapes (VoiceOS: vendor-docs/voiceos-list-conversations.txt
and the `voiceos` SDK's ConversationsPagination/ConversationResponse/ConversationRecording;
cozmox: the `cozmoxai` SDK's CallListResponse/CallRetrieveResponse; Vapi: `vapi-server-sdk`'s
Call, listed by `GET /call` with createdAt bounds and no cursor; Retell: `retell-sdk`'s
CallListResponse from `POST /v3/list-calls` with a `pagination_key`, and `GET /v2/get-call/{id}`;
ElevenLabs: the `elevenlabs` SDK's GetConversationsPageResponseModel with `next_cursor`, and
GetConversationResponseModel), checks the key as the vendor does, pages as the vendor pages,
and can misbehave on request: answer 429 with
Retry-After or 5xx for the next N requests, be down altogether, or change its conversations
between two pages (a hook runs after each list page). Recordings are served by the same server
(`/media/{id}.wav`; ElevenLabs' at `/v1/convai/conversations/{id}/audio`, streamed MP3 frames,
with the key), so the local stack's copier can archive them.
"""

from __future__ import annotations

import base64
import json
import random
import shlex
import sys
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from callvault.models import format_utc
from callvault_local.console import DEFAULT_MOTO_PORT, DEFAULT_PORT, LocalStack

VENDORS = ("voiceos", "cozmox", "vapi", "retell", "elevenlabs")


@dataclass
class Conversation:
    """One call the fake vendor knows: its creation time (what listing filters on) and its body."""

    id: str
    created_at: datetime
    body: dict[str, Any]
    recording: bool = True
    status: str = "ended"  # as VoiceOS names it: queued, started, ended


@dataclass
class Fault:
    status: int
    retry_after: str | None = None
    kind: str | None = None  # only requests of this kind (list, get, recording); None: any


def _iso(moment: datetime) -> str:
    return format_utc(moment)


def voiceos_conversation(conversation_id: str, created_at: datetime, status: str = "ended", turns: int = 4) -> dict[str, Any]:
    """A conversation in the shape of the voiceos SDK's ConversationResponse."""
    ended = status == "ended"
    started = status in ("started", "ended")
    return {
        "uri": f"https://api.voiceos.io/conversations/{conversation_id}",
        "type": "inbound_phone_call",
        "account_id": "acct-local",
        "status": status,
        "started_at": _iso(created_at + timedelta(seconds=2)) if started else None,
        "ended_at": _iso(created_at + timedelta(seconds=62)) if ended else None,
        "agent_config": {"initial_message": "Hello!", "prompt": "Be brief.", "max_duration_seconds": 600},
        "agent_id": "agent-local",
        "messages": [{"role": "agent" if n % 2 == 0 else "user", "content": f"turn {n}"} for n in range(turns if started else 0)],
        "phone_call": {"provider": "twilio", "to_number": "+15550001111", "from_number": "+15550002222"},
        "ended_reason": "user_ended" if ended else None,
        "cost_breakdown": {
            "total": 0.12,
            "voice": {"provider": "elevenlabs", "cost": 0.05, "characters": 420},
            "transcriber": {"provider": "deepgram", "cost": 0.02, "seconds": 60.0},
            "language_model": {"provider": "openai", "cost": 0.03, "input_tokens": 900, "output_tokens": 120},
            "agent": {"provider": "voiceos", "cost": 0.02, "seconds": 60.0},
        }
        if ended
        else None,
        "id": conversation_id,
    }


_COZMOX_STATUS = {"queued": "SCHEDULED", "started": "IN_PROGRESS", "ended": "completed"}


def cozmox_call(call_id: str, created_at: datetime, status: str = "ended", turns: int = 4) -> dict[str, Any]:
    """A call in the shape of the cozmoxai SDK's CallRetrieveResponse (`status` as VoiceOS names them)."""
    ended = status == "ended"
    started = status in ("started", "ended")
    return {
        "id": call_id,
        "agent_name": "Local agent",
        "call_type": "phone",
        "direction": "INBOUND",
        "duration_seconds": 60 if ended else None,
        "ended_at": _iso(created_at + timedelta(seconds=62)) if ended else None,
        "from_number": "+15550002222",
        "initial_agent_id": "agent-local",
        "organization_id": "org-local",
        "scheduled_at": _iso(created_at),
        "started_at": _iso(created_at + timedelta(seconds=2)) if started else None,
        "status": _COZMOX_STATUS[status],
        "to_number": "+15550001111",
        "cost_usd": "0.12" if ended else None,
        "summary": "The caller asked about opening hours." if ended else None,
        "transcript_text": " ".join(f"turn {n}" for n in range(turns)) if started else None,
    }


_TURNS = ("Hello, how can I help?", "I'd like to move my appointment.", "Friday at ten works.", "Thanks, bye.")
_VAPI_STATUS = {"queued": "queued", "started": "in-progress", "ended": "ended"}


def vapi_call(
    call_id: str, created_at: datetime, status: str = "ended", turns: int = 4, recording_url: str | None = None
) -> dict[str, Any]:
    """A call in the shape of vapi-server-sdk's Call, as `GET /call` and `GET /call/{id}` give it."""
    ended = status == "ended"
    started = status in ("started", "ended")
    messages: list[dict[str, Any]] = [
        {
            "role": "bot" if n % 2 == 0 else "user",
            "message": _TURNS[n % len(_TURNS)],
            "time": created_at.timestamp() * 1000 + 2000 + n * 5000,
            "endTime": created_at.timestamp() * 1000 + 5000 + n * 5000,
            "secondsFromStart": 2.0 + n * 5,
        }
        for n in range(turns if started else 0)
    ]
    call: dict[str, Any] = {
        "id": call_id,
        "orgId": "org-local",
        "type": "inboundPhoneCall",
        "status": _VAPI_STATUS[status],
        "createdAt": _iso(created_at),
        "updatedAt": _iso(created_at + timedelta(seconds=62 if ended else 2)),
        "assistantId": "asst-local",
        "assistant": {"name": "Local agent"},
        "phoneNumberId": "pn-local",
        "customer": {"number": "+15550002222"},
    }
    if started:
        call["startedAt"] = _iso(created_at + timedelta(seconds=2))
        call["artifact"] = {"messages": messages, "transcript": "\n".join(m["message"] for m in messages)}
    if ended:
        call |= {
            "endedAt": _iso(created_at + timedelta(seconds=62)),
            "endedReason": "customer-ended-call",
            "cost": 0.12,
            "costBreakdown": {"transport": 0.01, "stt": 0.02, "llm": 0.03, "tts": 0.04, "vapi": 0.02, "total": 0.12},
            "costs": [{"type": "vapi", "subType": "normal", "minutes": 1.0, "cost": 0.02}],
            "analysis": {"summary": "The caller moved an appointment to Friday.", "successEvaluation": "true"},
        }
        if recording_url:
            call["artifact"] |= {"recording": {"mono": {"combinedUrl": recording_url}}, "recordingUrl": recording_url}
    return call


# One MPEG-1 Layer III frame, 128 kbit/s at 44.1 kHz (ElevenLabs' default MP3): a 4-byte header
# and silence, 417 bytes, 26 ms of audio. 128 kbit/s is 16,000 bytes a second.
_MP3_FRAME = b"\xff\xfb\x90\x64" + bytes(413)
MP3_BYTES_PER_SECOND = 16_000


def mp3_frames(size: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """`size` bytes of MP3 frames in chunks of `chunk`, made as they are asked for."""
    frames = _MP3_FRAME * (chunk // len(_MP3_FRAME) + 2)
    offset, sent = 0, 0
    while sent < size:
        piece = frames[offset : offset + min(chunk, size - sent)]
        offset = (offset + len(piece)) % len(_MP3_FRAME)
        sent += len(piece)
        yield piece


_RETELL_STATUS = {"queued": "registered", "started": "ongoing", "ended": "ended"}
# The fields `POST /v3/list-calls` lists (the SDK's CallListResponse items): no transcript.
_RETELL_UNLISTED = ("transcript", "transcript_object", "transcript_with_tool_calls")


def retell_call(
    call_id: str, created_at: datetime, status: str = "ended", turns: int = 4, recording_url: str | None = None
) -> dict[str, Any]:
    """A phone call in the shape of retell-sdk's PhoneCallResponse (`GET /v2/get-call/{id}`)."""
    ended = status == "ended"
    started = status in ("started", "ended")
    start_ms = int(created_at.timestamp() * 1000)
    utterances: list[dict[str, Any]] = [
        {
            "role": "agent" if n % 2 == 0 else "user",
            "content": _TURNS[n % len(_TURNS)],
            "words": [
                {"word": word, "start": n * 5.0 + 0.3 * i, "end": n * 5.0 + 0.3 * i + 0.25}
                for i, word in enumerate(_TURNS[n % len(_TURNS)].split())
            ],
        }
        for n in range(turns if started else 0)
    ]
    call: dict[str, Any] = {
        "call_id": call_id,
        "call_type": "phone_call",
        "agent_id": "agent-local",
        "agent_name": "Local agent",
        "agent_version": 1,
        "call_status": _RETELL_STATUS[status],
        "direction": "inbound",
        "from_number": "+15550002222",
        "to_number": "+15550001111",
        "opt_in_signed_url": False,
    }
    if started:
        call |= {
            "start_timestamp": start_ms,
            "transcript": "\n".join(f"{u['role'].title()}: {u['content']}" for u in utterances),
            "transcript_object": utterances,
            "transcript_with_tool_calls": utterances,
        }
    if ended:
        call |= {
            "end_timestamp": start_ms + 60_000,
            "duration_ms": 60_000,
            "disconnection_reason": "user_hangup",
            "call_cost": {
                "combined_cost": 12.0,
                "product_costs": [{"product": "retell_platform", "cost": 7.0}, {"product": "gpt-4o", "cost": 5.0}],
                "total_duration_seconds": 60.0,
                "total_duration_unit_price": 0.2,
            },
            "call_analysis": {
                "call_summary": "The caller moved an appointment to Friday.",
                "user_sentiment": "Positive",
                "call_successful": True,
                "in_voicemail": False,
            },
        }
        if recording_url:
            call["recording_url"] = recording_url
    return call


_ELEVENLABS_STATUS = {"queued": "initiated", "started": "in-progress", "ended": "done"}


def elevenlabs_conversation(
    conversation_id: str, created_at: datetime, status: str = "ended", turns: int = 4, recording_url: str | None = None
) -> dict[str, Any]:
    """A conversation in the shape of the elevenlabs SDK's GetConversationResponseModel (the `data`
    of `post_call_transcription`). Its audio is served at `/v1/convai/conversations/{id}/audio`."""
    ended = status == "ended"
    started = status in ("started", "ended")
    conversation: dict[str, Any] = {
        "agent_id": "agent-local",
        "agent_name": "Local agent",
        "conversation_id": conversation_id,
        "status": _ELEVENLABS_STATUS[status],
        "user_id": "user-local",
        "transcript": [
            {"role": "agent" if n % 2 == 0 else "user", "message": _TURNS[n % len(_TURNS)], "time_in_call_secs": n * 5}
            for n in range(turns if started else 0)
        ],
        "metadata": {
            "start_time_unix_secs": int(created_at.timestamp()),
            "call_duration_secs": 60 if ended else 0,
            "cost": 412 if ended else None,
            "cost_fiat": 0.0945 if ended else None,
            "termination_reason": "Call ended by remote party" if ended else None,
            "main_language": "en",
            "phone_call": {
                "type": "twilio",
                "direction": "inbound",
                "phone_number_id": "pn-local",
                "agent_number": "+15550001111",
                "external_number": "+15550002222",
                "stream_sid": "MZ-local",
                "call_sid": f"CA-{conversation_id}",
            },
        },
        "has_audio": ended,
        "has_user_audio": ended,
        "has_response_audio": ended,
        "has_auxiliary_audio": False,
    }
    conversation["metadata"] = {k: v for k, v in conversation["metadata"].items() if v is not None}
    if ended:
        conversation["analysis"] = {
            "call_successful": "success",
            "transcript_summary": "The caller moved an appointment to Friday.",
            "call_summary_title": "Reschedule",
            "evaluation_criteria_results": {},
            "data_collection_results": {},
        }
    return conversation


def _elevenlabs_summary(body: dict[str, Any]) -> dict[str, Any]:
    """A conversation as `GET /v1/convai/conversations` lists it (ConversationSummaryResponseModel)."""
    metadata, analysis = body.get("metadata") or {}, body.get("analysis") or {}
    return {
        "agent_id": body["agent_id"],
        "agent_name": body.get("agent_name"),
        "conversation_id": body["conversation_id"],
        "start_time_unix_secs": metadata.get("start_time_unix_secs"),
        "call_duration_secs": metadata.get("call_duration_secs", 0),
        "message_count": len(body.get("transcript") or []),
        "status": body["status"],
        "call_successful": analysis.get("call_successful", "unknown"),
        "transcript_summary": analysis.get("transcript_summary"),
        "direction": (metadata.get("phone_call") or {}).get("direction"),
    }


_BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "voiceos": voiceos_conversation,
    "cozmox": cozmox_call,
    "vapi": vapi_call,
    "retell": retell_call,
    "elevenlabs": elevenlabs_conversation,
}
# Vendors whose builder writes the recording URL into the call itself (a clone keeps it).
_RECORDED_IN_BODY = frozenset({"vapi", "retell"})
# Each API's list path and the prefix of its get-one path (what a fault of a `kind` matches).
_PATHS = {
    "voiceos": ("/conversations", "/conversations/"),
    "cozmox": ("/calls", "/calls/"),
    "vapi": ("/call", "/call/"),
    "retell": ("/v3/list-calls", "/v2/get-call/"),
    "elevenlabs": ("/v1/convai/conversations", "/v1/convai/conversations/"),
}
# The fields `GET /calls` lists (the SDK's CallListResponse Data); the rest only `GET /calls/{id}` gives.
_COZMOX_LISTED = (
    "id",
    "agent_name",
    "call_type",
    "callback_for",
    "direction",
    "duration_seconds",
    "ended_at",
    "from_number",
    "initial_agent_id",
    "prospect_external_id",
    "prospect_first_name",
    "prospect_id",
    "prospect_last_name",
    "prospect_phone",
    "scheduled_at",
    "started_at",
    "status",
    "to_number",
)


@dataclass
class FakeVendorApi:
    """One vendor's API on 127.0.0.1. Thread-safe; `requests` counts what was asked, by kind."""

    vendor: str
    key: str = "fake-api-key"
    max_page: int = 100
    conversations: dict[str, Conversation] = field(default_factory=dict)
    faults: deque[Fault] = field(default_factory=deque)
    down: bool = False
    after_list_page: Callable[[FakeVendorApi, int], None] | None = None
    requests: Counter[str] = field(default_factory=Counter)
    media: bytes = field(default_factory=lambda: silent_wav())
    # The size of each conversation's audio (ElevenLabs' `/audio`): a minute of 128 kbit/s MP3.
    audio_bytes: int = 60 * MP3_BYTES_PER_SECOND

    def __post_init__(self) -> None:
        if self.vendor not in VENDORS:
            raise ValueError(f"no fake API for {self.vendor!r}: one of {', '.join(VENDORS)}")
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.pages_served = 0

    # -- the calls it knows

    def add(self, conversation_id: str, created_at: datetime, status: str = "ended", *, recording: bool = True) -> dict[str, Any]:
        """Add (or replace) a call; its body, as the vendor's API returns it."""
        if self.vendor in _RECORDED_IN_BODY:
            media = self.media_url(conversation_id) if recording and status == "ended" else None
            body = _BUILDERS[self.vendor](conversation_id, created_at, status, recording_url=media)
        else:
            body = _BUILDERS[self.vendor](conversation_id, created_at, status)
        if self.vendor == "elevenlabs":  # its audio is served at /audio when the call has any
            body["has_audio"] = body["has_user_audio"] = body["has_response_audio"] = recording and status == "ended"
        with self._lock:
            self.conversations[conversation_id] = Conversation(conversation_id, created_at, body, recording, status)
        return body

    def populate(self, count: int, *, start: datetime, spacing: timedelta = timedelta(seconds=1), seed: int = 7) -> None:
        """`count` calls created from `start` on, mostly ended, some still running."""
        rng = random.Random(seed)  # noqa: S311 - test data, not a secret  # nosec B311
        for n in range(count):
            status = "ended" if rng.random() < 0.9 else "started"
            self.add(f"conv-{n:06d}", start + n * spacing, status)

    def fail_next(self, status: int, times: int = 1, retry_after: str | None = None, kind: str | None = None) -> None:
        """Answer the next `times` requests (of `kind` only, if given) with `status`."""
        with self._lock:
            self.faults.extend(Fault(status, retry_after, kind) for _ in range(times))

    # -- serving

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake API is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def media_url(self, conversation_id: str) -> str:
        return f"{self.url}/media/{conversation_id}.wav" if self._server else f"http://127.0.0.1/media/{conversation_id}.wav"

    def start(self, port: int = 0) -> str:
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name=f"fake-{self.vendor}-api", daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeVendorApi:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering: (status, headers, body)

    def respond(
        self, method: str, target: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes | Iterator[bytes]]:
        """`answer`, but a conversation's audio (ElevenLabs) streams: `audio_bytes` of MP3 frames,
        made as they are sent, so a 60-minute call's audio is never whole in memory."""
        path = unquote(urlsplit(target).path)
        if self.vendor == "elevenlabs" and method == "GET" and path.endswith("/audio"):
            refused = self._gate(path, headers)
            if refused is not None:
                return refused
            segments = path.strip("/").split("/")
            self.requests["recording"] += 1
            with self._lock:
                conversation = self.conversations.get(segments[3]) if len(segments) == 5 else None
            if conversation is None or not conversation.recording or conversation.status != "ended":
                return _json(404, {"detail": {"status": "audio_not_found", "message": "Audio not found"}})
            return 200, {"content-type": "audio/mpeg", "content-length": str(self.audio_bytes)}, mp3_frames(self.audio_bytes)
        return self.answer(method, target, headers, body)

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        path = unquote(parts.path)
        if path.startswith("/media/"):
            self.requests["media"] += 1
            return 200, {"content-type": "audio/wav"}, self.media
        refused = self._gate(path, headers)
        if refused is not None:
            return refused
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if self.vendor == "retell" and method == "POST" and path == "/v3/list-calls":
            return self._retell_list(body)
        if method != "GET":
            return _json(405, {"detail": "method not allowed"})
        answer: Callable[[str, dict[str, str]], tuple[int, dict[str, str], bytes]] = {
            "voiceos": self._voiceos,
            "cozmox": self._cozmox,
            "vapi": self._vapi,
            "retell": self._retell,
            "elevenlabs": self._elevenlabs,
        }[self.vendor]
        return answer(path, query)

    def _gate(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes] | None:
        """The answer of an API that is down, has a fault queued for this kind of request, or
        refuses the key; None when the request goes through."""
        with self._lock:
            if self.down:
                self.requests["down"] += 1
                return _json(503, {"detail": "service unavailable"})
            if self.faults and self.faults[0].kind in (None, _kind(self.vendor, path)):
                fault = self.faults.popleft()
                self.requests[f"fault {fault.status}"] += 1
                extra = {"retry-after": fault.retry_after} if fault.retry_after else {}
                status, head, body = _json(fault.status, {"detail": "try again later"})
                return status, head | extra, body
        if not self._authorized(headers):
            self.requests["unauthorized"] += 1
            return _json(401, {"detail": "Invalid API key"})
        return None

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self.vendor == "elevenlabs":
            return headers.get("xi-api-key") == self.key
        if self.vendor == "cozmox" and headers.get("x-api-key") == self.key:
            return True
        return headers.get("authorization", "") == f"Bearer {self.key}"

    def _one(self, conversation_id: str) -> Conversation | None:
        self.requests["get"] += 1
        with self._lock:
            return self.conversations.get(conversation_id)

    def _sorted(self, keep: Callable[[Conversation], bool]) -> list[Conversation]:
        """The calls `keep` accepts, newest first (as every one of these APIs lists by default)."""
        with self._lock:
            found = [c for c in self.conversations.values() if keep(c)]
        return sorted(found, key=lambda c: (c.created_at, c.id), reverse=True)

    def _vapi(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """`GET /call?createdAt{Gt,Ge,Lt,Le}&limit`: a JSON list, newest first, no cursor."""
        if path == "/call":
            self.requests["list"] += 1
            try:
                bounds = {op: _instant(query[f"createdAt{op}"]) for op in ("Gt", "Ge", "Lt", "Le") if f"createdAt{op}" in query}
                limit = min(int(float(query.get("limit", "100"))), self.max_page)
            except ValueError:
                return _json(400, {"message": ["createdAt bounds are ISO 8601 dates, limit a number"], "error": "Bad Request"})

            def keep(c: Conversation) -> bool:
                t = c.created_at
                return all(
                    (op != "Gt" or t > b) and (op != "Ge" or t >= b) and (op != "Lt" or t < b) and (op != "Le" or t <= b)
                    for op, b in bounds.items()
                )

            reply = _json(200, [c.body for c in self._sorted(keep)[:limit]])
            self._listed(self.pages_served)
            return reply
        if path.startswith("/call/") and path.count("/") == 2:
            conversation = self._one(path.removeprefix("/call/"))
            missing = {"message": "Call not found", "error": "Not Found"}
            return _json(200, conversation.body) if conversation else _json(404, missing)
        return _json(404, {"message": "Cannot GET " + path, "error": "Not Found"})

    def _retell_list(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """`POST /v3/list-calls` {filter_criteria.start_timestamp, limit, sort_order, pagination_key}."""
        self.requests["list"] += 1
        try:
            request = json.loads(raw or b"{}")
            window = ((request.get("filter_criteria") or {}).get("start_timestamp")) or {"value": [0, 2**53]}
            low, high = (float(v) for v in window["value"])
            limit = min(int(request.get("limit", 1000)), self.max_page)
            after = _cursor_position(request["pagination_key"]) if request.get("pagination_key") else None
        except (ValueError, KeyError, TypeError, AttributeError):
            return _json(400, {"error_message": "invalid list-calls request"})
        found = self._sorted(lambda c: low <= c.created_at.timestamp() * 1000 <= high)
        if request.get("sort_order") == "ascending":
            found.reverse()
        if after is not None:
            found = [c for c in found if _beyond(c, after, ascending=request.get("sort_order") == "ascending")]
        page = found[:limit]
        items = [{k: v for k, v in c.body.items() if k not in _RETELL_UNLISTED} for c in page]
        more = len(found) > limit
        reply = _json(200, {"items": items, "has_more": more, "pagination_key": _cursor(page[-1]) if more else None})
        self._listed(self.pages_served)
        return reply

    def _retell(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/v2/get-call/") and path.count("/") == 3:
            conversation = self._one(path.removeprefix("/v2/get-call/"))
            return _json(200, conversation.body) if conversation else _json(404, {"error_message": "Call not found"})
        return _json(404, {"error_message": "Not Found"})

    def _elevenlabs(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """`GET /v1/convai/conversations?call_start_after_unix&call_start_before_unix&page_size&cursor`."""
        if path == "/v1/convai/conversations":
            self.requests["list"] += 1
            try:
                after = int(query.get("call_start_after_unix", "0"))
                before = int(query.get("call_start_before_unix", str(2**40)))
                size = int(query.get("page_size", "30"))
                position = _cursor_position(query["cursor"]) if query.get("cursor") else None
            except (ValueError, KeyError, TypeError):
                return _json(422, {"detail": [{"msg": "invalid query"}]})
            if not 1 <= size <= 100:
                return _json(422, {"detail": [{"msg": "page_size can not exceed 100"}]})
            size = min(size, self.max_page)
            found = self._sorted(lambda c: after < int(c.created_at.timestamp()) < before)
            if position is not None:
                found = [c for c in found if _beyond(c, position, ascending=False)]
            page = found[:size]
            more = len(found) > size
            conversations = [_elevenlabs_summary(c.body) for c in page]
            cursor = _cursor(page[-1]) if more else None
            reply = _json(200, {"conversations": conversations, "has_more": more, "next_cursor": cursor})
            self._listed(self.pages_served)
            return reply
        segments = path.strip("/").split("/")
        if len(segments) == 4 and segments[:3] == ["v1", "convai", "conversations"]:
            conversation = self._one(segments[3])
            return _json(200, conversation.body) if conversation else _json(404, {"detail": {"status": "conversation_not_found"}})
        return _json(404, {"detail": "Not Found"})

    def _window(self, after: str | None, before: str | None) -> list[Conversation]:
        low = datetime.fromisoformat(after.replace("Z", "+00:00")) if after else datetime.min.replace(tzinfo=UTC)
        high = datetime.fromisoformat(before.replace("Z", "+00:00")) if before else datetime.max.replace(tzinfo=UTC)
        with self._lock:
            found = [c for c in self.conversations.values() if low <= c.created_at < high]
        return sorted(found, key=lambda c: (c.created_at, c.id), reverse=True)  # newest first

    def _listed(self, page: int) -> None:
        self.pages_served += 1
        if self.after_list_page:
            self.after_list_page(self, page)

    def _voiceos(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        segments = path.strip("/").split("/")
        if segments == ["conversations"]:
            self.requests["list"] += 1
            try:
                index = int(query.get("index", "0"))
                limit = min(int(query.get("limit", "10")), self.max_page)
            except ValueError:
                return _json(422, {"detail": "index and limit are integers"})
            found = self._window(query.get("created_after"), query.get("created_before"))
            if "status" in query:
                found = [c for c in found if c.body.get("status") == query["status"]]
            items = [c.body for c in found[index * limit : (index + 1) * limit]]
            reply = _json(200, {"items": items, "index": index, "has_more": (index + 1) * limit < len(found)})
            self._listed(index)
            return reply
        if len(segments) in (2, 3) and segments[0] == "conversations":
            with self._lock:
                conversation = self.conversations.get(segments[1])
            if len(segments) == 2:
                self.requests["get"] += 1
                return _json(200, conversation.body) if conversation else _json(404, {"detail": "Conversation not found"})
            if segments[2] == "recording":
                self.requests["recording"] += 1
                if conversation and conversation.recording and conversation.body.get("status") == "ended":
                    return _json(200, {"recording_url": self.media_url(conversation.id)})
                return _json(404, {"detail": "Recording not found"})
        return _json(404, {"detail": "Not Found"})

    def _cozmox(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        segments = path.strip("/").split("/")
        if segments == ["calls"]:
            self.requests["list"] += 1
            try:
                page = max(1, int(query.get("page", "1")))
                size = min(int(query.get("size", "50")), self.max_page)
            except ValueError:
                return _json(422, {"detail": "page and size are integers"})
            found = self._window(query.get("start_date"), query.get("end_date"))
            data = [{k: c.body.get(k) for k in _COZMOX_LISTED} for c in found[(page - 1) * size : page * size]]
            total_pages = (len(found) + size - 1) // size
            meta = {"page": page, "size": size, "total": len(found), "total_pages": total_pages}
            reply = _json(200, {"data": data, "meta": meta})
            self._listed(page)
            return reply
        if len(segments) == 2 and segments[0] == "calls":
            self.requests["get"] += 1
            with self._lock:
                conversation = self.conversations.get(segments[1])
            if conversation is None:
                return _json(404, {"detail": "Call not found"})
            recorded = conversation.recording and conversation.body.get("status") == "completed"
            return _json(200, conversation.body | ({"recording_url": self.media_url(conversation.id)} if recorded else {}))
        return _json(404, {"detail": "Not Found"})


def silent_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A real (silent) WAV file for the fake recordings."""
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\0\0" * int(seconds * rate))
    return out.getvalue()


def _kind(vendor: str, path: str) -> str:
    """What a request asks for: list, get or recording."""
    listing, one = _PATHS[vendor]
    if path == listing:
        return "list"
    rest = path.removeprefix(one)
    return "get" if rest != path and "/" not in rest else "recording"


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _cursor(conversation: Conversation) -> str:
    """An opaque cursor: where the page ended (creation time and id), as keyset APIs keep it."""
    return base64.urlsafe_b64encode(json.dumps([_iso(conversation.created_at), conversation.id]).encode()).decode()


def _cursor_position(cursor: str) -> tuple[datetime, str]:
    created, conversation_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    return _instant(created), str(conversation_id)


def _beyond(conversation: Conversation, position: tuple[datetime, str], *, ascending: bool) -> bool:
    """Whether `conversation` comes after the cursor's position in the listing's order."""
    key = (conversation.created_at, conversation.id)
    return key > position if ascending else key < position


def _json(status: int, payload: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json"}, json.dumps(payload, separators=(",", ":")).encode()


def _handler(api: FakeVendorApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # headers and body in one write (two small ones meet delayed ACKs: 40 ms each)

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, reply_headers, body = api.respond(self.command, self.path, headers, request)
            self.send_response(status)
            for name, value in reply_headers.items():
                self.send_header(name, value)
            if isinstance(body, bytes):
                self.send_header("content-length", str(len(body)))
            self.end_headers()
            try:
                for chunk in [body] if isinstance(body, bytes) else body:
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):  # the client stopped reading (a size cap)
                self.close_connection = True

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def serve(vendor: str, port: int, key: str, conversations: int, stack: LocalStack | None = None) -> int:
    """`callvault fake-api`: a fake vendor API with `conversations` calls from the last hour, until
    Ctrl-C; the commands it prints name the port it took and the local stack's (`stack`) ports."""
    import time

    api = FakeVendorApi(vendor, key=key, media=silent_wav())
    try:
        api.start(port)
    except OSError as exc:
        print(f"callvault fake-api: cannot listen on 127.0.0.1:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    spacing = timedelta(seconds=3600 / max(conversations, 1))
    api.populate(conversations, start=datetime.now(UTC) - timedelta(hours=1), spacing=spacing)
    print(follow_up(vendor, api.url, key, conversations, stack or LocalStack(DEFAULT_PORT, DEFAULT_MOTO_PORT)), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        api.stop()
    return 0


def follow_up(vendor: str, url: str, key: str, conversations: int, stack: LocalStack) -> str:
    """What `fake-api` prints: where it listens, and the commands to reconcile from it into `stack`."""
    upper = vendor.upper()
    return "\n".join(
        [
            f"fake {vendor} API on {url} with {conversations} calls; to reconcile from it:",
            f"  export CALLVAULT_API_URL_{upper}={url} CALLVAULT_API_KEY_{upper}={shlex.quote(key)}",
            f"  callvault reconcile --vendor {vendor}{stack.flags()}",
        ]
    )
