"""Retell: call webhooks, `{"event": ..., "call": {...}}`, on one route.

Every call event is stored: `call_started`, `call_ended`, `call_analyzed` (adds the analysis:
summary, sentiment, success), `transcript_updated` (a snapshot of the transcript so far) and the
`transfer_*` events (the session's event list is the transfer's history; the destination is kept).
Anything else Retell may send to the same URL (its chat events) is acknowledged as `ignored`.

Signed as Retell's own SDK signs (`retell.lib.webhook_auth`): `x-retell-signature:
v=<unix ms>,d=<hex HMAC-SHA256(api key, body + v)>`, v within 5 minutes either way.
"""

from __future__ import annotations

import hashlib
import hmac
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
from callvault.jsonbody import load_json
from callvault.models import CallMetrics, Channel, Cost, SessionUpdate, Status, add_seconds, number, offset_seconds, utc_iso
from callvault.vendor_api import ApiClient
from callvault.vendors.base import (
    Listed,
    ObjectList,
    ParsedEvent,
    PayloadError,
    Pulled,
    Reconciler,
    TalkTime,
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
    signed_url_expiry,
)

VENDOR = "retell"
WEBHOOKS = frozenset({"events"})
SIGNATURE_HEADER = "x-retell-signature"
TRANSFER_EVENTS = frozenset({"transfer_started", "transfer_bridged", "transfer_cancelled", "transfer_ended"})
STORED_EVENTS = frozenset({"call_started", "call_ended", "call_analyzed", "transcript_updated"}) | TRANSFER_EVENTS

# What an event says of the call when `call_status` does not (a transfer leaves the call going).
_EVENT_STATUS = {
    "call_started": Status.IN_PROGRESS,
    "call_ended": Status.ENDED,
    "call_analyzed": Status.ENDED,
    "transcript_updated": Status.IN_PROGRESS,
    "transfer_started": Status.IN_PROGRESS,
    "transfer_bridged": Status.IN_PROGRESS,
    "transfer_cancelled": Status.IN_PROGRESS,
}
_CALL_STATUS = {
    "registered": Status.QUEUED,
    "ongoing": Status.IN_PROGRESS,
    "ended": Status.ENDED,
    "error": Status.ENDED,
    "not_connected": Status.ENDED,
}
# `transfer_target` is the person the call was handed to: a human on the line, as the caller is.
_ROLES = {"agent": "assistant", "user": "user", "transfer_target": "user"}
_TOOL_ROLES = frozenset({"tool_call_invocation", "tool_call_result"})  # transcript_with_tool_calls
_SIGNATURE = re.compile(r"v=(\d+),d=([0-9a-f]{64})")  # the SDK's own pattern, matched whole


class AnalysisInfo(VendorModel):
    call_summary: str | None = None
    user_sentiment: str | None = None
    call_successful: bool | None = None
    in_voicemail: bool | None = None
    custom_analysis_data: Any = None


class TelephonyIdentifier(VendorModel):
    twilio_call_sid: str | None = None


# Typed dicts, not models: a long call has thousands of turns (see cozmox.ArtifactMessage).
@with_config(VendorItem.model_config)
class Word(TypedDict, total=False):
    start: float | None


@with_config(VendorItem.model_config)
class Utterance(TypedDict, total=False):
    role: str | None
    content: str | None
    words: list[Word] | None
    # tool_call_invocation / tool_call_result (transcript_with_tool_calls)
    name: str | None
    arguments: str | None
    tool_call_id: str | None
    successful: bool | None


class CallInfo(VendorModel):
    call_id: str | None = None
    call_type: str | None = None
    call_status: str | None = None
    direction: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    agent_version: int | None = None
    from_number: str | None = None
    to_number: str | None = None
    start_timestamp: float | None = None
    end_timestamp: float | None = None
    duration_ms: float | None = None
    disconnection_reason: str | None = None
    recording_url: str | None = None
    transcript_object: ObjectList[Utterance] | None = None
    transcript_with_tool_calls: ObjectList[Utterance] | None = None
    call_analysis: AnalysisInfo | None = None
    call_cost: dict[str, Any] | None = None
    transfer_destination: str | None = None
    telephony_identifier: TelephonyIdentifier | None = None


class Envelope(VendorModel):
    event: str | None = None
    call: CallInfo | None = None
    data: CallInfo | None = None  # the call's old name, deprecated by Retell
    transfer_destination: str | None = None
    transfer_option: Any = None


def _tool_turn(item: Utterance, names: dict[str, str], at: str | None) -> dict[str, Any]:
    if item.get("role") == "tool_call_invocation":
        return {"role": "tool", "at": at, "tool": {"name": item.get("name"), "arguments": item.get("arguments")}}
    output = {"name": names.get(item.get("tool_call_id") or ""), "output": item.get("content")}
    return {"role": "tool", "at": at, "tool": output | {"is_error": item.get("successful") is False}}


def _turn_count(items: list[Utterance]) -> int:
    """How many turns `_transcript` makes of `items`, without making them (the write needs no more)."""
    return sum(1 for item in items if (role := item.get("role")) in _TOOL_ROLES or role in _ROLES)


def _transcript(items: list[Utterance], started_ms: float | None) -> list[dict[str, Any]]:
    """Spoken turns and tool calls in order; a turn's time is the call's start plus its first
    word's offset. Node transitions, key presses and injected text stay in the raw body only."""
    invocations = [item for item in items if item.get("role") == "tool_call_invocation"]
    names = {item.get("tool_call_id") or "": item.get("name") or "" for item in invocations}
    entries: list[dict[str, Any]] = []
    for item in items:
        role = item.get("role")
        words = item.get("words") or []
        offset = offset_seconds(words[0].get("start")) if words else None
        at = utc_iso(started_ms + offset * 1000) if started_ms is not None and offset is not None else None
        if role in _TOOL_ROLES:
            entries.append(_tool_turn(item, names, at))
        elif role in _ROLES:
            entries.append({"role": _ROLES[role], "text": item.get("content"), "at": at, "seconds": offset})
    return entries


def _channel(call: CallInfo) -> Channel | None:
    if call.call_type == "web_call":
        return Channel.WEB
    if call.call_type == "phone_call" or call.direction:
        return {"inbound": Channel.INBOUND_PHONE, "outbound": Channel.OUTBOUND_PHONE}.get(call.direction or "", Channel.UNKNOWN)
    return None


def _cost(call: CallInfo) -> Cost | None:
    """Retell prices in cents (`call_cost.combined_cost`); the breakdown is kept as Retell sent it."""
    if not call.call_cost:
        return None
    cents = call.call_cost.get("combined_cost")
    total = round(cents / 100, 6) if isinstance(cents, int | float) and not isinstance(cents, bool) else None
    return Cost(total_usd=total, breakdown=call.call_cost)


# The events that carry the ended call whole (the SDK's `PhoneCallResponse`/`WebCallResponse`).
_REPORTS = frozenset({"call_ended", "call_analyzed"})


def metrics_of(payload: Any) -> CallMetrics | None:
    """An ended call's metrics: `latency.e2e` p50/p90 ("from user stops talking to agent start
    talking", milliseconds) and talk time from each utterance's first and last word (`start`,
    `end`: seconds into the call). Retell's call says nothing of interruptions."""
    call = json_at(payload, "call") or json_at(payload, "data")
    e2e = json_at(call, "latency", "e2e")
    talk = TalkTime()
    utterances = json_at(call, "transcript_object")
    for item in objects(utterances if utterances is not None else json_at(call, "transcript_with_tool_calls")):
        role, words = item.get("role"), item.get("words")
        # The first and last word only: a long call has thousands.
        if isinstance(role, str) and role in _ROLES and isinstance(words, list) and words:
            talk.span(role == "agent", json_at(words[0], "start"), json_at(words[-1], "end"))
    agent_seconds, customer_seconds = talk.seconds()
    return call_metrics(
        latency_p50_ms=number(json_at(e2e, "p50")),
        latency_p90_ms=number(json_at(e2e, "p90")),
        agent_talk_seconds=agent_seconds,
        customer_talk_seconds=customer_seconds,
    )


def parse(webhook: str, payload: Any, headers: Headers) -> ParsedEvent:
    envelope = parse_model(Envelope, payload)
    call = envelope.call or envelope.data or CallInfo()
    event_type = envelope.event or "unknown"
    session_id = require_session_id(call.call_id)
    if event_type not in STORED_EVENTS:
        return ParsedEvent(event_type=event_type, session_id=session_id, update=None)

    started_at, ended_at = utc_iso(call.start_timestamp), utc_iso(call.end_timestamp)
    duration = call.duration_ms / 1000 if call.duration_ms is not None else None
    items = call.transcript_with_tool_calls if call.transcript_with_tool_calls is not None else call.transcript_object
    analysis = call.call_analysis or AnalysisInfo()
    telephony = call.telephony_identifier or TelephonyIdentifier()
    update = SessionUpdate(
        status=_CALL_STATUS.get(call.call_status or "") or _EVENT_STATUS.get(event_type),
        channel=_channel(call),
        agent=agent(call.agent_id, call.agent_name),
        from_number=call.from_number,
        to_number=call.to_number,
        started_at=started_at,
        ended_at=ended_at or (add_seconds(started_at, duration) if event_type in ("call_ended", "call_analyzed") else None),
        duration_seconds=duration,
        ended_reason=call.disconnection_reason,
        cost=_cost(call),
        recording_url=call.recording_url,
        recording_expires_at=signed_url_expiry(call.recording_url),
        transcript_turns=_turn_count(items) if items is not None else None,
        summary=analysis.call_summary,
        metrics=metrics_of(payload) if event_type in _REPORTS else None,
        vendor_fields=compact(
            {
                "user_sentiment": analysis.user_sentiment,
                "call_successful": analysis.call_successful,
                "in_voicemail": analysis.in_voicemail,
                "custom_analysis_data": analysis.custom_analysis_data,
                "agent_version": call.agent_version,
                "transfer_destination": envelope.transfer_destination or call.transfer_destination,
                "transfer_option": envelope.transfer_option,
                "twilio_call_sid": telephony.twilio_call_sid,
            }
        ),
    )
    built = partial(_transcript, items, call.start_timestamp) if items is not None else None
    return ParsedEvent(event_type=event_type, session_id=session_id, update=update, transcript=built)


def retell_signature(tolerance_seconds: int, clock: Callable[[], float] = time.time) -> auth.Verifier:
    """`x-retell-signature` as `retell.lib.webhook_auth.verify` checks it, against every secret."""

    def verify(headers: Headers, body: bytes, secrets: Sequence[bytes]) -> bool | None:
        signature = headers.get(SIGNATURE_HEADER)
        if signature is None:
            return None
        match = _SIGNATURE.fullmatch(signature)
        if match is None or len(match.group(1)) > 16:
            raise AuthError("malformed signature")
        if abs(clock() * 1000 - int(match.group(1))) > tolerance_seconds * 1000:
            raise AuthError("stale timestamp")
        if auth.hmac_matches(bytes.fromhex(match.group(2)), body + match.group(1).encode(), secrets):
            return True
        raise AuthError("invalid signature")

    return verify


def sign(body: bytes, secret: str) -> dict[str, str]:
    """The header Retell sends with `body`, signed now with `secret` (its API key)."""
    stamp = str(int(time.time() * 1000))
    digest = hmac.new(secret.encode(), body + stamp.encode(), hashlib.sha256).hexdigest()
    return {"x-retell-signature": f"v={stamp},d={digest}"}


def auth_scheme(config: Settings) -> tuple[auth.Verifier, ...]:
    return (retell_signature(config.hmac_tolerance_seconds),)


# -- the API reconcile pulls from (the `retell-sdk`'s CallResource: `list`, `retrieve`)
#
# `POST /v3/list-calls` with a JSON body: `filter_criteria.start_timestamp` a range filter
# (`{"op": "bt", "type": "range", "value": [low_ms, high_ms]}`), `limit`, `sort_order`, and from the
# second page on the `pagination_key` the last answer gave; it answers `{"items", "has_more",
# "pagination_key"}`. The listed calls lack the transcript: `GET /v2/get-call/{call_id}` is the
# whole call, the same object a webhook carries as `call`. Bearer API key.

PUBLIC_API_URL = "https://api.retellai.com"
PAGE_LIMIT = 100


class ListedCall(VendorItem):
    call_id: str | None = None
    call_status: str | None = None
    end_timestamp: float | None = None


class CallsPage(VendorModel):
    items: ObjectList[ListedCall] | None = None
    has_more: bool | None = None
    pagination_key: str | None = None


# Retell analyses a call after it ends (`call_analyzed` follows `call_ended`), and the table's
# status cannot tell an analysed ended call from one filed before its analysis. So a call that
# ended this recently before the pass is fetched again even when the table has it ended (an
# unchanged one is a duplicate that writes nothing): a call pulled, or a `call_ended` received,
# before its analysis gets the analysis a lost `call_analyzed` carried. Two passes at the default
# schedule; Retell's analysis takes seconds.
ANALYSIS_GRACE_MS = 10 * 60 * 1000


def _epoch_ms(moment: str) -> int:
    return int(datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp() * 1000)


def _listed_status(call: ListedCall, until_ms: int) -> Status | None:
    """The listed call's status for the table's check; None (fetch it) for one that ended within
    the analysis grace before the pass's end."""
    status = _CALL_STATUS.get(call.call_status or "")
    recent = call.end_timestamp is None or call.end_timestamp > until_ms - ANALYSIS_GRACE_MS
    if status is Status.ENDED and call.call_status != "not_connected" and recent:
        return None
    return status


def list_pages(client: ApiClient, since: str, until: str) -> Iterator[list[Listed]]:
    """Pages of `POST /v3/list-calls` for calls started from `since` to `until`, to the last."""
    until_ms = _epoch_ms(until)
    window = {"start_timestamp": {"op": "bt", "type": "range", "value": [_epoch_ms(since), until_ms]}}

    def request(key: str | None) -> tuple[list[Listed], bool, str | None]:
        body: dict[str, Any] = {"filter_criteria": window, "limit": PAGE_LIMIT, "sort_order": "descending"}
        if key is not None:
            body["pagination_key"] = key
        page = parse_model(CallsPage, load_json(client.request("POST", "/v3/list-calls", body=body)))
        items = page.items or []
        listed = [
            Listed(session_id=require_session_id(item.call_id), status=_listed_status(item, until_ms))
            for item in items
            if item.call_id
        ]
        return listed, bool(page.has_more and items), page.pagination_key

    return cursor_pages(request, "POST /v3/list-calls")


def parse_call(payload: Any) -> ParsedEvent:
    """A call as `GET /v2/get-call` returns it, read as the webhook event that would carry it in
    that state (`call_analyzed`, `call_ended`, `call_started`): one mapping, the same session."""
    if not isinstance(payload, dict):
        raise PayloadError(f"expected a JSON object, got {type(payload).__name__}")
    event = "call_started"
    if _CALL_STATUS.get(payload.get("call_status") or "") is Status.ENDED:
        event = "call_analyzed" if payload.get("call_analysis") else "call_ended"
    return parse("pull", {"event": event, "call": payload}, {})


def fetch(client: ApiClient, listed: Listed) -> Pulled:
    """`GET /v2/get-call/{call_id}`: the whole call, transcript and recording URL included."""
    return Pulled(body=client.request("GET", f"/v2/get-call/{quote(listed.session_id, safe='')}"), parse=parse_call)


RECONCILER = Reconciler(
    public_url=PUBLIC_API_URL,
    url_hint=f"CALLVAULT_API_URL_RETELL (default {PUBLIC_API_URL})",
    auth_headers=lambda key: {"Authorization": f"Bearer {key}"},
    list_pages=list_pages,
    fetch=fetch,
    parse=parse_call,
)

ADAPTER = VendorAdapter(vendor=VENDOR, webhooks=WEBHOOKS, auth_scheme=auth_scheme, parse=parse, sign=sign, reconciler=RECONCILER)
