"""Loopback fakes of the vendors' own APIs, for reconcile's tests and for trying it by hand
(`callvault fake-api --vendor voiceos`).

Each speaks its vendor's documented shapes (VoiceOS: vendor-docs/voiceos-list-conversations.txt
and the `voiceos` SDK's ConversationsPagination/ConversationResponse/ConversationRecording;
cozmox: the `cozmoxai` SDK's CallListResponse/CallRetrieveResponse), checks the key as the
vendor does, pages as the vendor pages, and can misbehave on request: answer 429 with
Retry-After or 5xx for the next N requests, be down altogether, or change its conversations
between two pages (a hook runs after each list page). Recordings are served by the same server
(`/media/{id}.wav`), so the local stack's copier can archive them.
"""

from __future__ import annotations

import json
import random
import sys
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from callvault.models import format_utc

VENDORS = ("voiceos", "cozmox")


@dataclass
class Conversation:
    """One call the fake vendor knows: its creation time (what listing filters on) and its body."""

    id: str
    created_at: datetime
    body: dict[str, Any]
    recording: bool = True


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


_BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {"voiceos": voiceos_conversation, "cozmox": cozmox_call}
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

    def __post_init__(self) -> None:
        if self.vendor not in VENDORS:
            raise ValueError(f"no fake API for {self.vendor!r}: one of {', '.join(VENDORS)}")
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.pages_served = 0

    # -- the calls it knows

    def add(self, conversation_id: str, created_at: datetime, status: str = "ended", *, recording: bool = True) -> dict[str, Any]:
        """Add (or replace) a call; its body, as the vendor's API returns it."""
        body = _BUILDERS[self.vendor](conversation_id, created_at, status)
        with self._lock:
            self.conversations[conversation_id] = Conversation(conversation_id, created_at, body, recording)
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

    def answer(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        path = unquote(parts.path)
        if path.startswith("/media/"):
            self.requests["media"] += 1
            return 200, {"content-type": "audio/wav"}, self.media
        with self._lock:
            if self.down:
                self.requests["down"] += 1
                return _json(503, {"detail": "service unavailable"})
            if self.faults and self.faults[0].kind in (None, _kind(path)):
                fault = self.faults.popleft()
                self.requests[f"fault {fault.status}"] += 1
                extra = {"retry-after": fault.retry_after} if fault.retry_after else {}
                status, head, body = _json(fault.status, {"detail": "try again later"})
                return status, head | extra, body
        if not self._authorized(headers):
            self.requests["unauthorized"] += 1
            return _json(401, {"detail": "Invalid API key"})
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if method != "GET":
            return _json(405, {"detail": "method not allowed"})
        return self._voiceos(path, query) if self.vendor == "voiceos" else self._cozmox(path, query)

    def _authorized(self, headers: dict[str, str]) -> bool:
        bearer = headers.get("authorization", "")
        if self.vendor == "cozmox" and headers.get("x-api-key") == self.key:
            return True
        return bearer == f"Bearer {self.key}"

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


def _kind(path: str) -> str:
    """What a request asks for: list, get or recording (the same for both vendors' paths)."""
    return {1: "list", 2: "get"}.get(len(path.strip("/").split("/")), "recording")


def _json(status: int, payload: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json"}, json.dumps(payload, separators=(",", ":")).encode()


def _handler(api: FakeVendorApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # headers and body in one write (two small ones meet delayed ACKs: 40 ms each)

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, reply_headers, body = api.answer(self.command, self.path, headers)
            self.send_response(status)
            for name, value in reply_headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def serve(vendor: str, port: int, key: str, conversations: int) -> int:
    """`callvault fake-api`: a fake vendor API with `conversations` calls from the last hour, until Ctrl-C."""
    import time

    api = FakeVendorApi(vendor, key=key, media=silent_wav())
    try:
        api.start(port)
    except OSError as exc:
        print(f"callvault fake-api: cannot listen on 127.0.0.1:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    spacing = timedelta(seconds=3600 / max(conversations, 1))
    api.populate(conversations, start=datetime.now(UTC) - timedelta(hours=1), spacing=spacing)
    upper = vendor.upper()
    print(f"fake {vendor} API on {api.url} with {conversations} calls; to reconcile from it:")
    print(f"  export CALLVAULT_API_URL_{upper}={api.url} CALLVAULT_API_KEY_{upper}={key}")
    print(f"  callvault reconcile --vendor {vendor}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        api.stop()
    return 0
