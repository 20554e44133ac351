"""Reading sessions back (the read API): list with filters and a cursor, or fetch one whole.

Knows nothing of API Gateway: the read function maps these results and errors to HTTP.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from callvault import archive, store, vendors
from callvault.errors import StorageUnavailable
from callvault.models import (
    Agent,
    CallMetrics,
    Channel,
    Cost,
    EventRef,
    ListedSession,
    RecordingState,
    Session,
    SessionSummary,
    SessionUpdate,
    Status,
    ToolCall,
    TranscriptEntry,
    format_utc,
)
from callvault.secrets import secrets_for

DEFAULT_LIMIT, MAX_LIMIT = 20, 100
CURSOR_KEY_OWNER = "cursor"
_CURSOR_VERSION = 2  # 2: the position is a list_sk (one per listing, whatever the partitions merged)
_MAC_BYTES = 16
_TRANSCRIPT_KEYS = tuple(TranscriptEntry.__annotations__)
_TOOL_KEYS = tuple(ToolCall.__annotations__)
_SESSION_ID = re.compile(r"[^\x00-\x1f#]{1,512}")


class InvalidParameter(ValueError):
    """A query or path parameter the caller got wrong: a 400 naming it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


class UnknownVendor(LookupError):
    """A path naming a vendor callvault does not know: a 404, as for any path that names nothing."""


class SessionPage(BaseModel):
    """One page of `GET /sessions`: newest first; `next_cursor` null on the last page."""

    items: list[ListedSession]
    next_cursor: str | None = None


def _vendor_list() -> str:
    return ", ".join(sorted(vendors.known()))


def check_vendor(vendor: str) -> str:
    """`vendor` as a filter: an unknown one is a bad parameter (400)."""
    if vendor not in vendors.known():
        raise InvalidParameter("vendor", f"unknown vendor; one of {_vendor_list()}")
    return vendor


def parse_time(parameter: str, value: str) -> str:
    """An ISO 8601 time as callvault stores times (UTC, milliseconds, `Z`); a zone-less time is UTC."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return format_utc(moment)
    except (ValueError, OverflowError):
        raise InvalidParameter(parameter, "not an ISO 8601 time, e.g. 2026-11-20T09:15:00Z") from None


# -- the cursor: the index position to resume from, bound to its query, signed so it cannot be forged


def _cursor_mac(key: str, payload: bytes) -> bytes:
    return hmac.new(key.encode(), payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(last_key: store.Item, query_digest: str) -> str:
    keys = secrets_for(CURSOR_KEY_OWNER)
    if not keys:
        raise RuntimeError("no cursor signing key configured")
    position = {name: value["S"] for name, value in last_key.items()}
    payload = json.dumps({"v": _CURSOR_VERSION, "q": query_digest, "k": position}, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_cursor_mac(keys[0], payload))}"


def decode_cursor(cursor: str, query_digest: str) -> store.Item:
    """The index position a cursor holds; InvalidParameter when it was altered, made by someone
    else, or belongs to another query (other filters)."""
    try:
        payload_text, mac_text = cursor.split(".")
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except (ValueError, binascii.Error):
        raise InvalidParameter("cursor", "malformed cursor") from None
    if not any(hmac.compare_digest(mac, _cursor_mac(key, payload)) for key in secrets_for(CURSOR_KEY_OWNER)):
        raise InvalidParameter("cursor", "cursor was not issued by this API or was altered")
    decoded = json.loads(payload)
    if decoded.get("v") != _CURSOR_VERSION or decoded.get("q") != query_digest:
        raise InvalidParameter("cursor", "cursor belongs to another query; repeat the same filters")
    return {name: {"S": value} for name, value in decoded["k"].items()}


def _query_digest(vendor: str | None, status: str | None, lowest: str, highest: str) -> str:
    return hashlib.sha256(json.dumps([vendor, status, lowest, highest]).encode()).hexdigest()[:24]


# -- listing


def list_sessions(
    *,
    vendor: str | None = None,
    status: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> SessionPage:
    """Sessions matching every given filter, newest first by `listed_at` (the vendor's creation
    time, else the call's start time, else when callvault first heard of it); `created_after` and
    `created_before` filter on that same time, both exclusive.

    One Query on a keys-only index for at most `limit` + 1 keys (one per known vendor when no
    vendor is given), then one BatchGetItem for the page's sessions: the cost follows the page,
    never the table.
    """
    if vendor is not None:
        check_vendor(vendor)
    if status is not None and status not in Status._value2member_map_:
        raise InvalidParameter("status", f"one of {', '.join(s.value for s in Status)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameter("limit", f"between 1 and {MAX_LIMIT}")
    # list_sk is "{time}#{vendor}#{id}": after T means above "T#" + the highest character.
    lowest = parse_time("created_after", created_after) + "#\uffff" if created_after else ""
    highest = parse_time("created_before", created_before) if created_before else "\uffff"
    if lowest and highest != "\uffff" and lowest > highest:
        raise InvalidParameter("created_after", "must be before created_before")
    digest = _query_digest(vendor, status, lowest, highest)
    start_key = decode_cursor(cursor, digest) if cursor else None
    keys, last_key = store.query_listing(
        vendor=vendor, status=status, lowest=lowest or " ", highest=highest, limit=limit, start_key=start_key
    )
    now = time.time()  # an expired session TTL has not deleted yet is not listed
    live = [item for item in store.get_sessions(keys) if not store.expired(item, now)]
    items = [
        ListedSession.model_validate(
            {**dict(summary_from_item(ArchivedBodies(item["vendor"]["S"]).resolve(item))), "listed_at": store.listed_at(item)}
        )
        for item in live
    ]
    return SessionPage(items=items, next_cursor=encode_cursor(last_key, digest) if last_key else None)


# -- one session


def _json_attr(item: store.Item, name: str) -> Any:
    value = item.get(name, {}).get("S")
    return json.loads(value) if value is not None else None


def _string(item: store.Item, name: str) -> str | None:
    value = item.get(name, {}).get("S")
    return str(value) if value is not None else None


def summary_from_item(item: store.Item) -> SessionSummary:
    """A session item (DynamoDB form) in the normalized shape, without transcript and events."""
    duration = item.get("duration_seconds", {}).get("N")
    status, channel, cost = _string(item, "status"), _string(item, "channel"), _json_attr(item, "cost")
    metrics = _json_attr(item, store.METRICS_ATTR)
    return SessionSummary(
        vendor=_string(item, "vendor") or "",
        session_id=_string(item, "session_id") or "",
        status=Status(status) if status else None,
        channel=Channel(channel) if channel else Channel.UNKNOWN,
        agent=Agent.model_validate(_json_attr(item, "agent") or {}),
        from_number=_string(item, "from_number"),
        to_number=_string(item, "to_number"),
        created_at=_string(item, "created_at"),
        started_at=_string(item, "started_at"),
        ended_at=_string(item, "ended_at"),
        duration_seconds=float(duration) if duration is not None else None,
        ended_reason=_string(item, "ended_reason"),
        cost=Cost.model_validate(cost) if cost is not None else None,
        recording=store.recording_from_item(item),
        summary=_string(item, "summary"),
        metrics=CallMetrics.model_validate(metrics) if metrics is not None else None,
        vendor_fields={
            name.removeprefix(store.VENDOR_FIELD_PREFIX): json.loads(value["S"])
            for name, value in item.items()
            if name.startswith(store.VENDOR_FIELD_PREFIX)
        },
    )


def _full_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A stored transcript turn with every key of the contract, absent ones null."""
    full = {key: entry.get(key) for key in _TRANSCRIPT_KEYS}
    tool = entry.get("tool")
    if isinstance(tool, dict):
        full["tool"] = {key: tool.get(key) for key in _TOOL_KEYS} | {"is_error": bool(tool.get("is_error"))}
    return full


class ArchivedBodies:
    """The raw bodies a session item points at, each read from S3 and parsed once per request."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor
        self._parsed: dict[str, SessionUpdate | None] = {}

    def update(self, uri: str, webhook: str) -> SessionUpdate | None:
        if uri not in self._parsed:
            from callvault.ingest import parse_archived
            from callvault.vendors.base import PayloadError

            try:
                self._parsed[uri] = parse_archived(self.vendor, webhook, archive.read(uri))
            except (ValueError, PayloadError) as exc:  # the adapter read it when it arrived
                raise StorageUnavailable(f"archived body no longer parses: {type(exc).__name__}") from exc
        return self._parsed[uri]

    def resolve(self, item: store.Item) -> store.Item:
        """`item` with each attribute that points at a raw body replaced by its value there."""
        resolved = dict(item)
        for name, value in item.items():
            source = store.referenced(value)
            if source is None or name == store.TRANSCRIPT_ATTR:
                continue
            update = self.update(*source)
            attributes = store.session_attributes(update, None)[0] if update else {}
            if name in attributes:
                resolved[name] = attributes[name]
            else:
                del resolved[name]
        return resolved

    def transcript(self, item: store.Item) -> list[dict[str, Any]]:
        """The session's transcript: from the raw body of its longest snapshot (or, for items
        written before transcripts were referenced, inline or offloaded under `sessions/`)."""
        value = item.get(store.TRANSCRIPT_ATTR)
        if value is None:
            return []
        source = store.referenced(value)
        if source is not None:
            update = self.update(*source)
            entries: list[Any] = list(update.transcript or []) if update else []
        else:
            stored = value["S"]
            entries = json.loads(archive.read(stored) if stored.startswith("s3://") else stored.encode())
        return [_full_entry(entry) for entry in entries]


def check_session(vendor: str, session_id: str) -> None:
    """UnknownVendor (a 404: the path names nothing) unless `vendor` is known; InvalidParameter
    unless `session_id` could be one of its sessions."""
    if vendor not in vendors.known():
        raise UnknownVendor(f"no vendor {vendor!r}; one of {_vendor_list()}")
    if not _SESSION_ID.fullmatch(session_id):
        raise InvalidParameter("session_id", "not a session id")


def get_session(vendor: str, session_id: str) -> Session | None:
    """The whole normalized session: transcript (read back from the raw body that carried it),
    every event with its raw payload's S3 URI, the recording. None when there is no such
    session, or when it has outlived its retention (DynamoDB TTL deletes lazily)."""
    check_session(vendor, session_id)
    items = store.session_items(vendor, session_id)
    session_item = next((i for i in items if i["sk"]["S"] == store.SESSION_SK), None)
    if session_item is None or store.is_tombstone(session_item) or store.expired(session_item, time.time()):
        return None
    events = sorted(
        (
            EventRef.model_validate(
                {name: i[name]["S"] for name in ("event_id", "type", "received_at", "raw_s3_uri")}
                | {"source": i.get("source", {}).get("S", "webhook")}
            )
            for i in items
            if i["sk"]["S"].startswith(store.EVENT_SK_PREFIX)
        ),
        key=lambda e: (e.received_at, e.event_id),
    )
    bodies = ArchivedBodies(vendor)
    summary = summary_from_item(bodies.resolve(session_item))
    return Session.model_validate({**dict(summary), "transcript": bodies.transcript(session_item), "events": events})


def archived_recording_key(vendor: str, session_id: str) -> str | None:
    """The archive key of the session's recording when one is archived; None when the session is
    unknown, erased, past its retention, or has no archived recording. One BatchGetItem, no S3 read."""
    check_session(vendor, session_id)
    key = {"pk": {"S": store.session_pk(vendor, session_id)}, "sk": {"S": store.SESSION_SK}}
    found = store.get_sessions([key])  # tombstones left out
    if not found or store.expired(found[0], time.time()):
        return None
    recording = store.recording_from_item(found[0])
    if recording.state is not RecordingState.ARCHIVED or not recording.s3_uri:
        return None
    return archive.own_key(recording.s3_uri)
