"""A session's changes, as the table's stream tells them: one `SessionChange` per write of a
session item, in the order written.

The table's stream has two readers and no more (AWS advises at most two per shard; a third is
throttled): the recording copier, and the session-changes function, whose consumers (the
analytics dataset, the events out) each take the same batch of changes. A consumer is
idempotent: a batch, or its tail, can be handed to it again after a failure, with the same
`change_id`s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from callvault import store

ChangeKind = Literal["INSERT", "MODIFY", "REMOVE"]


@dataclass(frozen=True, slots=True)
class SessionChange:
    """One write of a session item: its images before and after (DynamoDB form)."""

    change_id: str  # the stream record's eventID: the same on every retry of this record
    sequence: str  # the stream record's SequenceNumber (what a batch item failure names)
    kind: ChangeKind
    old: Mapping[str, Any] | None  # None for a new session
    new: Mapping[str, Any] | None  # None when the item was deleted (retention's TTL)
    written_at: str  # when DynamoDB wrote it (ApproximateCreationDateTime), ISO 8601 UTC

    @property
    def erased(self) -> bool:
        """True when this write made the session a tombstone (its erasure)."""
        return store.is_tombstone(self.new) and not store.is_tombstone(self.old)


# A consumer takes a batch's changes in order and answers the index of the first change it did
# not handle (None: all handled); Lambda then retries the batch from that change.
Consumer = Callable[[Sequence[SessionChange]], int | None]


def _written_at(record: Mapping[str, Any]) -> str:
    seconds = float(record.get("dynamodb", {}).get("ApproximateCreationDateTime", 0))
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def from_records(records: Sequence[Mapping[str, Any]]) -> list[SessionChange]:
    """The session-item changes among a stream batch's `records`, in order (event items skipped)."""
    changes = []
    for record in records:
        stream = record.get("dynamodb", {})
        if stream.get("Keys", {}).get("sk", {}).get("S") != store.SESSION_SK:
            continue
        changes.append(
            SessionChange(
                change_id=str(record["eventID"]),
                sequence=str(stream["SequenceNumber"]),
                kind=record["eventName"],
                old=stream.get("OldImage"),
                new=stream.get("NewImage"),
                written_at=_written_at(record),
            )
        )
    return changes


def first_unhandled(changes: Sequence[SessionChange], consumers: Sequence[Consumer]) -> SessionChange | None:
    """Hands `changes` to each consumer in turn; the earliest change any of them did not handle
    (from which the batch is retried), or None when all were."""
    first: int | None = None
    for consume in consumers:
        failed = consume(changes)
        if failed is not None:
            first = failed if first is None else min(first, failed)
    return None if first is None else changes[first]


# Stored events: the event items' inserts, which the stream function also receives (its second
# filter) for the analytics dataset's `events` table. An event item names its session by key
# only (the digest, store.session_pk); the session id comes from the session's change in the
# same transaction, or its item.


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event item's first write: the event is stored (a duplicate writes no item)."""

    sequence: str
    session_pk: str
    item: Mapping[str, Any]  # the event item (DynamoDB form)


# An event consumer answers as a Consumer does: the index of the first event it did not handle.
EventConsumer = Callable[[Sequence[StoredEvent]], int | None]


def stored_events(records: Sequence[Mapping[str, Any]]) -> list[StoredEvent]:
    """The event items' inserts among a stream batch's `records`, in order."""
    found = []
    for record in records:
        stream = record.get("dynamodb", {})
        if record.get("eventName") != "INSERT" or not stream.get("Keys", {}).get("sk", {}).get("S", "").startswith(
            store.EVENT_SK_PREFIX
        ):
            continue
        found.append(
            StoredEvent(
                sequence=str(stream["SequenceNumber"]), session_pk=stream["Keys"]["pk"]["S"], item=stream.get("NewImage", {})
            )
        )
    return found


def earliest(*sequences: str | None) -> str | None:
    """The earliest of stream sequence numbers (numeric strings), None when none is given."""
    given = [s for s in sequences if s is not None]
    return min(given, key=int) if given else None
