"""speaknode: `SessionStarted` and `ConversationComplete` webhooks.

Signed with HMAC-SHA256 of the raw body (hex) in a header whose name speaknode does not
publish (configurable, default `X-Speaknode-Signature`); a Bearer token is accepted too.
The `event` field is not trusted: speaknode's own schema page labels a SessionStarted example
`ConversationComplete`, so the route says which event this is.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from callvault import auth
from callvault.auth import Headers
from callvault.config import Settings
from callvault.models import Agent, CallMetrics, Channel, SessionUpdate, Status, add_seconds, utc_iso
from callvault.vendors.base import (
    ObjectList,
    ParsedEvent,
    TalkTime,
    VendorAdapter,
    VendorItem,
    VendorModel,
    call_metrics,
    compact,
    json_at,
    objects,
    parse_model,
    require_session_id,
)

VENDOR = "speaknode"
# route's webhook name -> the event it receives
WEBHOOK_EVENTS = {"session-started": "SessionStarted", "conversation-complete": "ConversationComplete"}


class HistoryItem(VendorItem):
    role: str | None = None
    content: str | None = None
    kind: str | None = None
    id: str | None = None
    created_at: str | None = None
    interrupted: bool | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None
    tool_arguments_json: str | None = None
    tool_output: str | None = None
    tool_is_error: bool | None = None


class SessionData(VendorModel):
    session_id: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    audio_url: str | None = None
    audio_url_expires_at: str | None = None
    created_at: str | None = None
    start_time: str | None = None
    agent_joined_at: str | None = None
    duration_seconds: float | None = None
    history: ObjectList[HistoryItem] | None = None
    telecom_provider: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    campaign_item_id: str | None = None
    campaign_id: str | None = None
    campaign_name: str | None = None
    url_parameters: dict[str, Any] | None = None
    test_run_id: str | None = None
    test_id: str | None = None
    test_status: str | None = None
    test_eval_result: dict[str, Any] | None = None


class Envelope(VendorModel):
    event: str | None = None
    data: SessionData | None = None


_ROLES = {"user": "user", "agent": "assistant", "assistant": "assistant", "system": "system", "tool": "tool"}


def _entry(item: HistoryItem) -> dict[str, Any]:
    is_tool = bool(item.tool_name or item.tool_call_id) or (item.kind or "").lower().startswith(("tool", "function"))
    tool = (
        {
            "name": item.tool_name,
            "arguments": item.tool_arguments_json,
            "output": item.tool_output,
            "is_error": bool(item.tool_is_error),
        }
        if is_tool
        else None
    )
    role = "tool" if is_tool else _ROLES.get((item.role or "").lower(), "system")
    return {"role": role, "text": item.content, "at": utc_iso(item.created_at), "tool": tool}


def _transcript(history: list[HistoryItem]) -> list[dict[str, Any]]:
    return [_entry(item) for item in history]


_AGENT_ROLES = frozenset({"agent", "assistant"})


def _spoke_for(began: Any, ended: Any) -> float | None:
    """Seconds from one ISO 8601 time to another (both with a zone, or neither); None when unreadable."""
    if type(began) is not str or type(ended) is not str:
        return None
    try:
        return (datetime.fromisoformat(ended) - datetime.fromisoformat(began)).total_seconds()  # 3.11 reads `Z` too
    except (ValueError, TypeError):  # unreadable, or one with a zone and one without
        return None


def metrics_of(payload: Any) -> CallMetrics | None:
    """A completed conversation's interruptions (its agent turns marked `interrupted`) and talk
    time (each turn's `metrics.started_speaking_at` to `stopped_speaking_at`). Its turns' latency
    figures (`e2e_latency`, ...) come with no unit in speaknode's documents: left out."""
    talk, told = TalkTime(), []
    for item in objects(json_at(payload, "data", "history")):
        role = item.get("role")
        side = role.lower() if isinstance(role, str) else ""
        if side in _AGENT_ROLES and type(item.get("interrupted")) is bool:
            told.append(item["interrupted"])
        timing = item.get("metrics")
        if (side in _AGENT_ROLES or side == "user") and isinstance(timing, dict):
            talk.add(side != "user", _spoke_for(timing.get("started_speaking_at"), timing.get("stopped_speaking_at")))
    agent_seconds, customer_seconds = talk.seconds()
    return call_metrics(
        interruptions=sum(told) if told else None,
        agent_talk_seconds=agent_seconds,
        customer_talk_seconds=customer_seconds,
    )


def parse(webhook: str, payload: Any, headers: Headers) -> ParsedEvent:
    envelope = parse_model(Envelope, payload)
    data = envelope.data or SessionData()
    session_id = require_session_id(data.session_id)
    event_type = WEBHOOK_EVENTS[webhook]
    complete = event_type == "ConversationComplete"
    started_at = utc_iso(data.start_time) or utc_iso(data.agent_joined_at)
    has_phone = bool(data.telecom_provider or data.from_number or data.to_number)
    update = SessionUpdate(
        status=Status.ENDED if complete else Status.IN_PROGRESS,
        # A campaign places calls; otherwise speaknode does not say which way the call went.
        channel=(Channel.OUTBOUND_PHONE if data.campaign_id else Channel.UNKNOWN) if has_phone else None,
        agent=Agent(id=data.agent_id, name=data.agent_name) if data.agent_id or data.agent_name else None,
        from_number=data.from_number,
        to_number=data.to_number,
        created_at=utc_iso(data.created_at),
        started_at=started_at,
        ended_at=add_seconds(started_at, data.duration_seconds) if complete else None,
        duration_seconds=data.duration_seconds,
        recording_url=data.audio_url,
        recording_expires_at=utc_iso(data.audio_url_expires_at),
        transcript_turns=len(data.history) if data.history is not None else None,  # one turn an item
        metrics=metrics_of(payload) if complete else None,
        vendor_fields=compact(
            {
                "telecom_provider": data.telecom_provider,
                "campaign_id": data.campaign_id,
                "campaign_name": data.campaign_name,
                "campaign_item_id": data.campaign_item_id,
                "url_parameters": data.url_parameters,
                "test_run_id": data.test_run_id,
                "test_id": data.test_id,
                "test_status": data.test_status,
                "test_eval_result": data.test_eval_result,
                # Kept when it disagrees with the route, for whoever debugs the vendor's labels.
                "declared_event": envelope.event if envelope.event and envelope.event != event_type else None,
            }
        ),
    )
    built = partial(_transcript, data.history) if data.history is not None else None
    return ParsedEvent(event_type=event_type, session_id=session_id, update=update, transcript=built)


def auth_scheme(config: Settings) -> tuple[auth.Verifier, ...]:
    return (auth.hmac_body(config.speaknode_signature_header), auth.bearer())


ADAPTER = VendorAdapter(
    vendor=VENDOR,
    webhooks=frozenset(WEBHOOK_EVENTS),
    auth_scheme=auth_scheme,
    parse=parse,
    sign=auth.hmac_body_headers("X-Speaknode-Signature"),
)
