"""VoiceOS: agent webhook events carrying a conversation.

VoiceOS does not publish the webhook body, so this adapter is deliberately forgiving: the
conversation may be the body itself or sit under `data`, `conversation` or `payload`, and the
event name under `event`, `type` or `name`. Authentication is the header the user configures
on the agent's webhook: `Authorization: Bearer <secret>`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from typing import Any
from urllib.parse import quote

from callvault import auth
from callvault.auth import Headers
from callvault.config import Settings
from callvault.jsonbody import load_json
from callvault.models import Agent, Channel, Cost, SessionUpdate, Status, seconds_between, utc_iso
from callvault.vendor_api import ApiClient, ApiError
from callvault.vendors.base import (
    Listed,
    ObjectList,
    ParsedEvent,
    PayloadError,
    Pulled,
    Reconciler,
    VendorAdapter,
    VendorItem,
    VendorModel,
    compact,
    parse_model,
    require_session_id,
)

VENDOR = "voiceos"
WEBHOOKS = frozenset({"events"})
# Events that ask the receiver to act, or that stream every utterance: acknowledged, archived.
IGNORED_EVENTS = frozenset({"function_call:triggered", "speech:started", "speech:ended", "message:sent", "message:generated"})

_EVENT_STATUS = {
    "phone_call:connection_requested": Status.RINGING,
    "phone_call:accepted": Status.IN_PROGRESS,
    "phone_call:rejected": Status.ENDED,
    "conversation:started": Status.IN_PROGRESS,
    "conversation:duration": Status.IN_PROGRESS,
    "conversation:ended": Status.ENDED,
}
_CONVERSATION_STATUS = {"queued": Status.QUEUED, "started": Status.IN_PROGRESS, "ended": Status.ENDED}
_CHANNEL = {
    "inbound_phone_call": Channel.INBOUND_PHONE,
    "outbound_phone_call": Channel.OUTBOUND_PHONE,
    "web_call": Channel.WEB,
}
_ROLES = {"user": "user", "assistant": "assistant", "agent": "assistant", "system": "system", "tool": "tool", "function": "tool"}
_WRAPPERS = ("data", "conversation", "payload")
_EVENT_KEYS = ("event", "type", "name")


class PhoneCall(VendorModel):
    provider: str | None = None
    to_number: str | None = None
    from_number: str | None = None


class ChatMessage(VendorItem):
    role: str | None = None
    content: str | None = None
    created_at: str | None = None


class CostBreakdown(VendorModel):
    total: float | None = None


class AgentConfig(VendorModel):
    name: str | None = None


class Conversation(VendorModel):
    id: str | None = None
    uri: str | None = None
    type: str | None = None
    account_id: str | None = None
    status: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    agent_id: str | None = None
    agent_config: AgentConfig | None = None
    messages: ObjectList[ChatMessage] | None = None
    phone_call: PhoneCall | None = None
    ended_reason: str | None = None
    cost_breakdown: CostBreakdown | None = None
    recording_url: str | None = None


def _locate(payload: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The event name and the conversation object, wherever this body keeps them."""
    event = next((payload[k] for k in _EVENT_KEYS if isinstance(payload.get(k), str) and ":" in payload[k]), None)
    for key in _WRAPPERS:
        inner = payload.get(key)
        if isinstance(inner, dict):
            if event is None:
                event = next((inner[k] for k in _EVENT_KEYS if isinstance(inner.get(k), str) and ":" in inner[k]), None)
            nested = next((inner[k] for k in _WRAPPERS if isinstance(inner.get(k), dict)), None)
            return event, nested if nested is not None and "id" in nested else inner
    return event, payload


def _transcript(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    return [
        {"role": _ROLES.get((m.role or "").lower(), "system"), "text": m.content, "at": utc_iso(m.created_at)} for m in messages
    ]


def parse(webhook: str, payload: Any, headers: Headers) -> ParsedEvent:
    if not isinstance(payload, dict):
        raise PayloadError(f"expected a JSON object, got {type(payload).__name__}")
    event, body = _locate(payload)
    conversation = parse_model(Conversation, body)
    session_id = require_session_id(conversation.id or payload.get("conversation_id") or payload.get("conversationId"))
    event_type = event or (f"conversation:{conversation.status}" if conversation.status else "conversation:update")
    if event_type in IGNORED_EVENTS:
        return ParsedEvent(event_type=event_type, session_id=session_id, update=None)

    phone = conversation.phone_call or PhoneCall()
    agent_name = conversation.agent_config.name if conversation.agent_config else None
    started_at, ended_at = utc_iso(conversation.started_at), utc_iso(conversation.ended_at)
    total = conversation.cost_breakdown.total if conversation.cost_breakdown else None
    update = SessionUpdate(
        status=_EVENT_STATUS.get(event_type) or _CONVERSATION_STATUS.get(conversation.status or ""),
        channel=_CHANNEL.get(conversation.type or ""),
        agent=Agent(id=conversation.agent_id, name=agent_name) if conversation.agent_id or agent_name else None,
        from_number=phone.from_number,
        to_number=phone.to_number,
        created_at=utc_iso(conversation.created_at),
        started_at=started_at,
        ended_at=ended_at,
        duration_seconds=seconds_between(started_at, ended_at),
        ended_reason=conversation.ended_reason or ("rejected" if event_type == "phone_call:rejected" else None),
        cost=Cost(total_usd=total, breakdown=conversation.cost_breakdown.model_dump(exclude={"total"}, exclude_none=True))
        if conversation.cost_breakdown
        else None,
        recording_url=conversation.recording_url,
        transcript_turns=len(conversation.messages) if conversation.messages is not None else None,  # one turn a message
        vendor_fields=compact(
            {"account_id": conversation.account_id, "uri": conversation.uri, "telephony_provider": phone.provider}
        ),
    )
    built = partial(_transcript, conversation.messages) if conversation.messages is not None else None
    return ParsedEvent(event_type=event_type, session_id=session_id, update=update, transcript=built)


def auth_scheme(config: Settings) -> tuple[auth.Verifier, ...]:
    return (auth.bearer(),)


# -- the API (vendor-docs/voiceos-list-conversations.txt; the `voiceos` SDK's ConversationsApi)

PUBLIC_API_URL = "https://api.voiceos.io"
PAGE_LIMIT = 100


class ListedConversation(VendorItem):
    id: str | None = None
    status: str | None = None


class ConversationsPage(VendorModel):
    """`GET /conversations` (the SDK's ConversationsPagination)."""

    items: ObjectList[ListedConversation] | None = None
    index: int | None = None
    has_more: bool | None = None


def list_pages(client: ApiClient, since: str, until: str) -> Iterator[list[Listed]]:
    """Pages of `GET /conversations?created_after&created_before&index&limit`, to the last.

    The first page is asked for without `index` and each next one at the answer's `index` + 1,
    so whether VoiceOS counts pages from 0 or 1 does not matter."""
    index: int | None = None
    while True:
        body = client.request(
            "GET", "/conversations", {"created_after": since, "created_before": until, "index": index, "limit": PAGE_LIMIT}
        )
        page = parse_model(ConversationsPage, load_json(body))
        items = page.items or []
        yield [
            Listed(session_id=require_session_id(item.id), status=_CONVERSATION_STATUS.get(item.status or ""))
            for item in items
            if item.id
        ]
        current = page.index if page.index is not None else (index if index is not None else 0)
        if not page.has_more or not items:
            return
        if index is not None and current < index:  # the API went back a page: stop rather than loop
            raise ApiError(f"GET /conversations answered index {current} for index {index}")
        index = current + 1


def fetch(client: ApiClient, listed: Listed) -> Pulled:
    """`GET /conversations/{id}`, and for an ended one `GET /conversations/{id}/recording`
    (`{"recording_url": ...}`, 404 when there is none): the URL the recordings copier archives."""
    path = f"/conversations/{quote(listed.session_id, safe='')}"
    body = client.request("GET", path)
    conversation = load_json(body)
    recording_url = None
    if isinstance(conversation, dict) and conversation.get("status") == "ended" and not conversation.get("recording_url"):
        try:
            recording = load_json(client.request("GET", path + "/recording"))
        except ApiError as exc:
            if not exc.not_found:
                raise
        else:
            url = recording.get("recording_url") if isinstance(recording, dict) else None
            recording_url = url if isinstance(url, str) and url else None

    def parse_pulled(payload: Any) -> ParsedEvent:
        parsed = parse_conversation(payload)
        if recording_url is None or parsed.update is None:
            return parsed
        return replace(parsed, update=parsed.update.model_copy(update={"recording_url": recording_url}))

    return Pulled(body=body, parse=parse_pulled)


def parse_conversation(payload: Any) -> ParsedEvent:
    """A conversation as the API returns it: the same mapping as a webhook carrying it."""
    return parse("pull", payload, {})


RECONCILER = Reconciler(
    public_url=PUBLIC_API_URL,
    url_hint=f"CALLVAULT_API_URL_VOICEOS (default {PUBLIC_API_URL})",
    auth_headers=lambda key: {"Authorization": f"Bearer {key}"},
    list_pages=list_pages,
    fetch=fetch,
    parse=parse_conversation,
)

ADAPTER = VendorAdapter(
    vendor=VENDOR, webhooks=WEBHOOKS, auth_scheme=auth_scheme, parse=parse, sign=auth.bearer_headers, reconciler=RECONCILER
)
