"""Events out (DESIGN.md "Events out"): each change of a session, put on the stack's EventBridge bus.

A consumer of the session changes (callvault.changes): from a session item's images before and
after one write it derives what changed for someone outside, never what was merely delivered
again. A duplicate writes nothing (no stream record); a replayed webhook, a pulled copy of a
known call or a late event only moves `updated_at`, `event_count` or a reference, which no
change below looks at. Per session:

- `Call Started`: the write that created the session item (the first thing heard of the call),
  unless that write already ended it: a call first heard of when it was over says `Call Ended`
  only (nothing was in progress to react to). A later `started` never emits it again, so it
  cannot follow `Call Ended`.
- `Call Ended`: the write that moved the status to `ended` (status only moves forward: once).
- `Recording Archived` / `Recording Failed`: the write that moved `recording_state` to that state.
- `Call Erased`: the write that replaced the session with its tombstone; vendor and session id only.

`detail.id` is derived from the stream record's eventID and the change's type: each write is one
stream record, and a record keeps its eventID through every retry of its batch, so a retried
batch repeats each change with the same id. A session digest + type would be stable too, but
would give two distinct changes of one type (a recording failed, set back to pending by hand,
failed again) one id, and consumers would drop the second as a repeat.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from callvault import store
from callvault.changes import SessionChange
from callvault.models import RecordingState, SessionSummary, Status
from callvault.observability import logger

SOURCE = "callvault"
BUS_ENV = "EVENT_BUS_NAME"  # empty or unset: events out are off, nothing is put
# PutEvents takes at most 10 entries, and 256 KB in all (each entry's Source, DetailType, Detail
# and Resources, UTF-8): a batch stops at whichever comes first.
MAX_ENTRIES = 10
MAX_REQUEST_BYTES = 256 * 1024
# One entry must fit a request with room for its envelope; an inline-only session is far below
# (about 2 KB: callvault/store/sessions.py's inline bounds).
MAX_DETAIL_BYTES = MAX_REQUEST_BYTES - 1024

EventType = Literal["call.started", "call.ended", "recording.archived", "recording.failed", "call.erased"]
DETAIL_TYPES: dict[str, str] = {
    "call.started": "Call Started",
    "call.ended": "Call Ended",
    "recording.archived": "Recording Archived",
    "recording.failed": "Recording Failed",
    "call.erased": "Call Erased",
}


class _Detail(BaseModel):
    # Serialized, `type` is always there: the schema (docs/events/) says it is required.
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    id: str  # the same on every delivery of this change: a consumer drops repeats by it
    vendor: str
    session_id: str


class CallStarted(_Detail):
    """`Call Started`: the first time callvault heard of a call still in progress (or not yet told)."""

    type: Literal["call.started"] = "call.started"
    session: SessionSummary


class CallEnded(_Detail):
    """`Call Ended`: the call's status became `ended`."""

    type: Literal["call.ended"] = "call.ended"
    session: SessionSummary


class RecordingArchived(_Detail):
    """`Recording Archived`: the call's recording was copied into the archive (`session.recording.s3_uri`)."""

    type: Literal["recording.archived"] = "recording.archived"
    session: SessionSummary


class RecordingFailed(_Detail):
    """`Recording Failed`: the recording could not be had; `session.recording.error` says why."""

    type: Literal["recording.failed"] = "recording.failed"
    session: SessionSummary


class CallErased(_Detail):
    """`Call Erased`: the session was erased; erase your copies. The vendor and session id only."""

    type: Literal["call.erased"] = "call.erased"


Detail = CallStarted | CallEnded | RecordingArchived | RecordingFailed | CallErased
DETAIL_MODELS: dict[str, type[_Detail]] = {
    "Call Started": CallStarted,
    "Call Ended": CallEnded,
    "Recording Archived": RecordingArchived,
    "Recording Failed": RecordingFailed,
    "Call Erased": CallErased,
}

_WITH_SESSION: dict[str, type[CallStarted | CallEnded | RecordingArchived | RecordingFailed]] = {
    "call.started": CallStarted,
    "call.ended": CallEnded,
    "recording.archived": RecordingArchived,
    "recording.failed": RecordingFailed,
}


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event to put: the change it tells and its EventBridge entry."""

    detail_type: str
    detail: _Detail
    time: str  # when DynamoDB wrote the change

    def entry(self, bus: str) -> dict[str, Any]:
        return {
            "Source": SOURCE,
            "DetailType": self.detail_type,
            "Detail": self.detail.model_dump_json(),
            "EventBusName": bus,
            "Time": self.time,
        }


def _rank(image: Mapping[str, Any] | None) -> int:
    value = (image or {}).get("status_rank", {}).get("N")
    return int(value) if value is not None else 0


def _recording_state(image: Mapping[str, Any] | None) -> str | None:
    value = (image or {}).get(store.recording_attr("state"), {}).get("S")
    return str(value) if value is not None else None


def _known(image: Mapping[str, Any] | None) -> bool:
    """Whether `image` is a session callvault has heard of (an item being created holds its keys only)."""
    return image is not None and "session_id" in image


def change_id(change: SessionChange, event_type: str) -> str:
    """The id of one change: the same for every delivery of its stream record (see the module doc)."""
    return hashlib.sha256(f"{change.change_id}\0{event_type}".encode()).hexdigest()[:32]


def event_types(change: SessionChange) -> list[EventType]:
    """What `change` (one write of a session item) changed for the outside, in lifecycle order."""
    old, new = change.old, change.new
    if change.erased:
        return ["call.erased"] if old is not None and "session_id" in old else []
    if not _known(new) or store.is_tombstone(new):  # deleted by retention's TTL, or a tombstone swept again
        return []
    found: list[EventType] = []
    ended = Status.ENDED.rank
    if not _known(old) and _known(new) and _rank(new) < ended:
        found.append("call.started")
    if _rank(new) >= ended > _rank(old):
        found.append("call.ended")
    state = _recording_state(new)
    if state != _recording_state(old):
        if state == RecordingState.ARCHIVED:
            found.append("recording.archived")
        elif state == RecordingState.FAILED:
            found.append("recording.failed")
    return found


def session_summary(item: Mapping[str, Any], *, resolve: bool = True) -> SessionSummary:
    """The session as the listing shows it: values stored as references to a raw body are read
    back from it (as `GET /sessions` does); should that body be unreadable (or `resolve` be
    False), those values are left out (null) rather than holding up every later change of the stream."""
    from callvault import sessions

    plain = dict(item)
    if resolve and any(store.referenced(value) is not None for name, value in item.items() if name != store.TRANSCRIPT_ATTR):
        try:
            return sessions.summary_from_item(sessions.ArchivedBodies(str(item["vendor"]["S"])).resolve(plain))
        except Exception as exc:  # the body was erased or no longer parses: say what is inline
            logger.warning("session summary without its referenced values", error=type(exc).__name__)
    return sessions.summary_from_item({k: v for k, v in plain.items() if store.referenced(v) is None})


def outgoing(change: SessionChange) -> list[Outgoing]:
    """The events `change` emits (none for most writes)."""
    found = []
    for event_type in event_types(change):
        ident = change_id(change, event_type)
        if event_type == "call.erased":
            old = change.old or {}
            detail: _Detail = CallErased(id=ident, vendor=old["vendor"]["S"], session_id=old["session_id"]["S"])
        else:
            new = change.new or {}
            summary = session_summary(new)
            detail = _WITH_SESSION[event_type](id=ident, vendor=summary.vendor, session_id=summary.session_id, session=summary)
            if len(detail.model_dump_json().encode()) > MAX_DETAIL_BYTES:  # a huge value read back: the inline ones only
                logger.warning("event detail too large; referenced values left out", detail_type=DETAIL_TYPES[event_type])
                detail = detail.model_copy(update={"session": session_summary(new, resolve=False)})
        found.append(Outgoing(DETAIL_TYPES[event_type], detail, change.written_at))
    return found


def _entry_bytes(entry: Mapping[str, Any]) -> int:
    return sum(len(str(entry[key]).encode()) for key in ("Source", "DetailType", "Detail")) + 14  # + Time


def _batches(entries: list[tuple[int, dict[str, Any]]]) -> list[list[tuple[int, dict[str, Any]]]]:
    batches: list[list[tuple[int, dict[str, Any]]]] = []
    size = 0
    for indexed in entries:
        bytes_ = _entry_bytes(indexed[1])
        if not batches or len(batches[-1]) == MAX_ENTRIES or size + bytes_ > MAX_REQUEST_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(indexed)
        size += bytes_
    return batches


def put_on_bus(changes: Sequence[SessionChange]) -> int | None:
    """The consumer (changes.Consumer): every change's events put on the bus, in order, in
    batches; the index of the first change whose events were not all accepted (the batch is
    retried from it, with the same ids), or None. Off (None at once) when no bus is configured."""
    bus = os.environ.get(BUS_ENV, "")
    if not bus or not changes:
        return None
    entries: list[tuple[int, dict[str, Any]]] = []
    for index, change in enumerate(changes):
        entries += [(index, event.entry(bus)) for event in outgoing(change)]
    from botocore.exceptions import BotoCoreError, ClientError

    from callvault import aws

    client = aws.events()
    for batch in _batches(entries):
        try:
            answer = client.put_events(Entries=[entry for _, entry in batch])
        except (BotoCoreError, ClientError) as exc:
            logger.warning("events not put", error=type(exc).__name__, entries=len(batch))
            return batch[0][0]
        if answer.get("FailedEntryCount", 0):
            results = answer.get("Entries", [])
            # Entries answer in the order sent; one without an EventId was not accepted.
            failed = [i for i, result in enumerate(results) if "EventId" not in result] or [0]
            codes = sorted({str(results[i].get("ErrorCode")) for i in failed if i < len(results)})
            logger.warning("events not accepted", failed=answer["FailedEntryCount"], codes=codes)
            return batch[failed[0]][0]
        logger.info("events put", count=len(batch), types=sorted({entry["DetailType"] for _, entry in batch}))
    return None
