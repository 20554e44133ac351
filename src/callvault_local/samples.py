"""Realistic webhook traffic made from the sample payloads in `events/payloads/`: any number of
distinct sessions, for tests, benchmarks and the soak harness."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from callvault_local.template import ROOT

PAYLOADS = ROOT / "events" / "payloads"


@dataclass(frozen=True)
class Webhook:
    """One webhook request to send: where, and the body."""

    vendor: str
    webhook: str
    body: bytes
    session_id: str


# (session id, created at, ended) -> the webhook's route name and its body
Maker = Callable[[str, str, bool], tuple[str, dict[str, Any]]]


@cache
def _template(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    return loaded


def _agentsessions(session_id: str, created_at: str, ended: bool) -> tuple[str, dict[str, Any]]:
    body = copy.deepcopy(_template("agentsessions/session-completed"))
    body["idempotencyKey"] = f"evt_{session_id}_{'end' if ended else 'start'}"
    body["type"] = "session.completed" if ended else "session.started"
    body["data"].update(id=session_id, createdAt=created_at)
    return "session-completed", body


def _vapi_format(vendor: str) -> Maker:
    """Server messages in Vapi's format, from `vendor`'s own samples (cozmox, vapi)."""

    def make(session_id: str, created_at: str, ended: bool) -> tuple[str, dict[str, Any]]:
        body = copy.deepcopy(_template(f"{vendor}/end-of-call-report" if ended else f"{vendor}/status-update-in-progress"))
        body["message"]["call"].update(id=session_id, createdAt=created_at)
        return "server-messages", body

    return make


def _voiceos(session_id: str, created_at: str, ended: bool) -> tuple[str, dict[str, Any]]:
    body = copy.deepcopy(_template("voiceos/conversation-ended" if ended else "voiceos/conversation-started"))
    body["data"].update(id=session_id, created_at=created_at)
    return "events", body


def _speaknode(session_id: str, created_at: str, ended: bool) -> tuple[str, dict[str, Any]]:
    body = copy.deepcopy(_template("speaknode/conversation-complete" if ended else "speaknode/session-started"))
    body["data"].update(session_id=session_id, created_at=created_at)
    return ("conversation-complete" if ended else "session-started"), body


def _epoch_ms(created_at: str) -> int:
    return int(datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp() * 1000)


def _retell(session_id: str, created_at: str, ended: bool) -> tuple[str, dict[str, Any]]:
    # Retell sends no creation time: the call's start stands in for it.
    body = copy.deepcopy(_template("retell/call-ended" if ended else "retell/call-started"))
    body["call"].update(call_id=session_id, start_timestamp=_epoch_ms(created_at))
    if ended:
        body["call"]["end_timestamp"] = _epoch_ms(created_at) + body["call"]["duration_ms"]
    return "events", body


def _elevenlabs(session_id: str, created_at: str, ended: bool) -> tuple[str, dict[str, Any]]:
    # ElevenLabs sends only once the call is over: the transcription first, then its audio.
    body = copy.deepcopy(_template("elevenlabs/post-call-audio" if ended else "elevenlabs/post-call-transcription"))
    body["data"]["conversation_id"] = session_id
    if not ended:
        body["data"]["metadata"]["start_time_unix_secs"] = _epoch_ms(created_at) // 1000
    return "post-call", body


_MAKERS: dict[str, Maker] = {
    "agentsessions": _agentsessions,
    "cozmox": _vapi_format("cozmox"),
    "voiceos": _voiceos,
    "speaknode": _speaknode,
    "vapi": _vapi_format("vapi"),
    "retell": _retell,
    "elevenlabs": _elevenlabs,
}
# Vendors whose start leaves a session in progress, listed by the creation time given here.
VENDORS = ("agentsessions", "cozmox", "voiceos", "speaknode", "vapi")
# Every vendor with a webhook route (the soak's mix): Retell lists by first-seen time, and
# ElevenLabs' first webhook already ends the session.
ALL_VENDORS = tuple(_MAKERS)


def session_webhook(vendor: str, session_id: str, created_at: str, *, ended: bool) -> Webhook:
    """The webhook `vendor` sends when session `session_id` (created at `created_at`) starts, or
    when it ends (`ended`): a start leaves the session in progress, an end ends it."""
    webhook, body = _MAKERS[vendor](session_id, created_at, ended)
    return Webhook(vendor, webhook, json.dumps(body).encode(), session_id)
