"""Events: one item per event, stored exactly once with its session's update.

Recording an event is a single TransactWriteItems: a Put of the event item that fails if it exists
(the idempotency key, kept forever) and an Update of the session item. The two cannot disagree,
and a duplicate writes nothing.

The session update is written so that a status only moves forward: the first attempt sets the
event's status, guarded by `status_rank <= rank`; when the session is already further along (a
late event) the next attempt only fills attributes the session does not have yet.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from callvault import aws
from callvault.config import settings
from callvault.errors import StorageUnavailable
from callvault.models import EventSource, Recording, RecordingState, SessionUpdate
from callvault.observability import logger
from callvault.store.listing import VENDOR_STATUS_ATTR, _listing_sets, list_sort_key
from callvault.store.recordings import recording_attr, recording_values
from callvault.store.sessions import (
    TRANSCRIPT_ATTR,
    TRANSCRIPT_TURNS_ATTR,
    partial_documents,
    reference,
    session_attributes,
    transcript_turns,
)
from callvault.store.table import _CONFLICT_RETRIES, EVENT_SK_PREFIX, EXPIRES_ATTR, _retention_expiry, _session_key, session_pk
from callvault.store.tombstones import ERASED_ATTR, is_tombstone

Outcome = Literal["stored", "duplicate", "forgotten"]


@dataclass(frozen=True, slots=True)
class EventRecord:
    vendor: str
    session_id: str
    event_id: str
    event_type: str
    webhook: str
    received_at: str
    raw_s3_uri: str
    source: EventSource = "webhook"


# A recording link makes the recording pending, unless the session's is already further along.
_PENDING = recording_values(Recording(state=RecordingState.PENDING))[recording_attr("state")]


@dataclass(frozen=True, slots=True)
class _UpdateShape:
    """What decides the text of a session update's expressions; events of one kind share it, so
    each text is made once (`_expressions`), not for every event."""

    attributes: tuple[str, ...]  # the session attributes set, in order
    filled_only: frozenset[str]  # those of them set only where the session lacks them
    listing: tuple[str, ...]  # `_listing_sets(update)`
    created: bool
    advance_status: bool
    sets_status: bool
    move_transcript: bool
    recording: bool
    expires: bool


@dataclass(frozen=True, slots=True)
class _Expressions:
    update: str
    condition: str
    names: dict[str, str]


@lru_cache(maxsize=512)
def _expressions(shape: _UpdateShape) -> _Expressions:
    sets = [
        "vendor = :vendor",
        "session_id = :session_id",
        "updated_at = :now",  # (no first-seen time of its own: list_sk has it until a vendor's time comes)
    ]
    # A forgotten session's item is its tombstone: the transaction refuses to write it again.
    names: dict[str, str] = {"#erased": ERASED_ATTR}
    conditions: list[str] = ["attribute_not_exists(#erased)"]
    if shape.created:
        sets.append("created_at = :created")
    sets += shape.listing
    for index, name in enumerate(shape.attributes):
        names[f"#a{index}"] = name
        replace = shape.advance_status and name not in shape.filled_only
        sets.append(f"#a{index} = :a{index}" if replace else f"#a{index} = if_not_exists(#a{index}, :a{index})")
    if shape.move_transcript:  # a snapshot at least as long as the one pointed at: point at this body
        names["#transcript"], names["#turns"] = TRANSCRIPT_ATTR, TRANSCRIPT_TURNS_ATTR
        sets.append("#transcript = :transcript, #turns = :turns")
        conditions.append("(attribute_not_exists(#turns) OR #turns <= :turns)")
    if shape.recording:
        sets.append(f"{recording_attr('state')} = if_not_exists({recording_attr('state')}, :pending)")
    if shape.expires:  # the session lives as long after its last event as an event does
        sets.append(f"{EXPIRES_ATTR} = :expires")
    if shape.sets_status:
        names["#status"] = "status"
        sets.append(f"#status = :status, status_rank = :rank, {VENDOR_STATUS_ATTR} = :vendor_status")
        conditions.append("(attribute_not_exists(status_rank) OR status_rank <= :rank)")
    return _Expressions("SET " + ", ".join(sets) + " ADD event_count :one", " AND ".join(conditions), names)


# `:a0`, `:a1`...: the attributes' value placeholders, made once.
_VALUE_NAMES = tuple(f":a{index}" for index in range(64))


def _session_update(
    record: EventRecord,
    update: SessionUpdate,
    *,
    advance_status: bool,
    move_transcript: bool,
) -> dict[str, Any]:
    attributes, oversized = session_attributes(update, record)
    if oversized:
        logger.warning("session attributes left out", fields=oversized, event_id=record.event_id)
    sets_status = advance_status and update.status is not None
    expiry = _retention_expiry(record.received_at)
    shape = _UpdateShape(
        attributes=tuple(attributes),
        filled_only=frozenset(partial_documents(update)) if advance_status else frozenset(),
        listing=tuple(_listing_sets(update)),
        created=update.created_at is not None,
        advance_status=advance_status,
        sets_status=sets_status,
        move_transcript=move_transcript,
        recording=update.recording_url is not None,
        expires=expiry is not None,
    )
    expressions = _expressions(shape)
    values: dict[str, Any] = {
        ":vendor": {"S": record.vendor},
        ":session_id": {"S": record.session_id},
        ":now": {"S": record.received_at},
        ":one": {"N": "1"},
        ":list_sk": {
            "S": list_sort_key(update.created_at or update.started_at or record.received_at, record.vendor, record.session_id)
        },
    }
    if update.created_at is not None:
        values[":created"] = {"S": update.created_at}
    for index, value in enumerate(attributes.values()):
        values[_VALUE_NAMES[index] if index < len(_VALUE_NAMES) else f":a{index}"] = value
    if move_transcript:
        values[":transcript"] = reference(record.raw_s3_uri)
        values[":turns"] = {"N": str(transcript_turns(update))}
    if update.recording_url is not None:
        values[":pending"] = _PENDING
    if expiry is not None:
        values[":expires"] = expiry
    if sets_status and update.status is not None:
        values[":status"] = {"S": update.status.value}
        values[":rank"] = {"N": str(update.status.rank)}
        values[":vendor_status"] = {"S": f"{record.vendor}#{update.status.value}"}
    return {
        "TableName": settings().table_name,
        "Key": _session_key(record.vendor, record.session_id),
        "ConditionExpression": expressions.condition,
        # On failure DynamoDB returns the item as it is, so the retry knows which guard failed
        # (or that the item is a tombstone).
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "UpdateExpression": expressions.update,
        "ExpressionAttributeValues": values,
        "ExpressionAttributeNames": dict(expressions.names),
    }


def _guards_that_hold(current: Mapping[str, Any] | None, update: SessionUpdate, advance: bool, move: bool) -> tuple[bool, bool]:
    """Which of the session update's guards still hold against the item as it is (`current`,
    from a cancelled transaction). Both guards compare with values that only grow, so a guard
    that failed fails for good; without the item, the status guard is dropped first."""
    if current is None:
        return (False, move) if advance else (False, False)
    rank = current.get("status_rank", {}).get("N")
    turns = current.get(TRANSCRIPT_TURNS_ATTR, {}).get("N")
    status_holds = rank is None or (update.status is not None and int(rank) <= update.status.rank)
    transcript_holds = turns is None or int(turns) <= transcript_turns(update)
    return advance and status_holds, move and transcript_holds


def _event_put(record: EventRecord) -> dict[str, Any]:
    item = {
        "pk": {"S": session_pk(record.vendor, record.session_id)},
        "sk": {"S": EVENT_SK_PREFIX + record.event_id},
        "event_id": {"S": record.event_id},
        "type": {"S": record.event_type},
        "webhook": {"S": record.webhook},
        "received_at": {"S": record.received_at},
        "raw_s3_uri": {"S": record.raw_s3_uri},
        "source": {"S": record.source},
    }
    expiry = _retention_expiry(record.received_at)
    if expiry is not None:
        item[EXPIRES_ATTR] = expiry
    return {"TableName": settings().table_name, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}


def record_event(record: EventRecord, update: SessionUpdate) -> Outcome:
    """Store the event and merge it into its session, exactly once (a recording the event carried
    in its body is the session's through `claim_embedded_recording`, after this).

    "duplicate" when the event was stored before, "forgotten" when the session was erased
    (nothing is written either way). Raises StorageUnavailable when DynamoDB cannot be
    written; then nothing was.
    """
    advance, move = update.status is not None, transcript_turns(update) > 0
    conflicts = 0
    while True:
        session = _session_update(record, update, advance_status=advance, move_transcript=move)
        items = [{"Put": _event_put(record)}, {"Update": session}]
        try:
            aws.dynamodb().transact_write_items(TransactItems=items)  # type: ignore[arg-type,unused-ignore]
            return "stored"
        except ClientError as exc:
            if aws.error_code(exc) != "TransactionCanceledException":
                raise StorageUnavailable(f"dynamodb write failed: {aws.error_code(exc)}") from exc
            reasons = exc.response.get("CancellationReasons", [])
            codes = [reason.get("Code") for reason in reasons]
            session_refused = codes[1:2] == ["ConditionalCheckFailed"]
            if session_refused and (is_tombstone(reasons[1].get("Item")) or not (advance or move)):
                return "forgotten"  # erased (an update with no guard is refused by the tombstone only)
            if codes[:1] == ["ConditionalCheckFailed"]:
                return "duplicate"
            if session_refused:
                # The session is further along (fill gaps, keep its status), or holds a longer
                # transcript (keep pointing at it); whichever it is, the other still applies.
                guards = _guards_that_hold(reasons[1].get("Item"), update, advance, move)
                advance, move = guards if guards != (advance, move) else _guards_that_hold(None, update, advance, move)
                continue
            if "TransactionConflict" in codes and conflicts < _CONFLICT_RETRIES:
                conflicts += 1
                time.sleep(random.uniform(0, 0.02 * 2**conflicts))  # noqa: S311 - retry jitter, not a secret  # nosec B311
                continue
            raise StorageUnavailable(f"dynamodb transaction cancelled: {codes}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"dynamodb write failed: {type(exc).__name__}") from exc
