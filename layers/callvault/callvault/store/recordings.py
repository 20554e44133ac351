"""A session's recording, in its session item: its attributes, and the claim that lets one copier
copy it once (callvault/recordings.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callvault import aws
from callvault.config import settings
from callvault.models import Recording, RecordingState, format_utc
from callvault.store.table import Item, _call, _conditional_update, _session_key
from callvault.store.tombstones import ERASED_ATTR, is_tombstone

# A session's recording lives in the session item as one attribute per field of `Recording`,
# named `recording_<field>`. Every writer (ingest, the copier) and the reader (the read API) go
# through these functions, so a field the model gains is written and read back with no list to keep.
RECORDING_ATTR_PREFIX = "recording_"


_ATTRS = {field: RECORDING_ATTR_PREFIX + field for field in Recording.model_fields}


def recording_attr(field: str) -> str:
    """The session item attribute holding `Recording.<field>`."""
    try:
        return _ATTRS[field]
    except KeyError:
        raise KeyError(f"Recording has no field {field!r}") from None


def recording_values(recording: Recording) -> dict[str, dict[str, str]]:
    """The fields set on `recording` (those given when it was made), as session item attributes."""
    values: dict[str, dict[str, str]] = {}
    for field, value in recording.model_dump(mode="json", exclude_unset=True).items():
        if value is not None:
            values[recording_attr(field)] = {"N": str(value)} if type(value) is int else {"S": str(value)}
    return values


def recording_source_values(source_url: str, expires_at: str | None) -> dict[str, dict[str, str]]:
    """`recording_values` of a recording known only by its link (what an event tells), made
    directly: every event that carries a link writes these."""
    values = {_ATTRS["source_url"]: {"S": source_url}}
    if expires_at is not None:
        values[_ATTRS["expires_at"]] = {"S": expires_at}
    return values


def recording_from_item(item: Item) -> Recording:
    """The recording a session item (DynamoDB form) holds; absent fields null, state `none`."""
    stored = {field: item.get(recording_attr(field)) for field in Recording.model_fields}
    # Both S and N come as strings; the model gives each field its type.
    return Recording.model_validate({field: next(iter(v.values())) for field, v in stored.items() if v})


@dataclass(frozen=True, slots=True)
class RecordingClaim:
    """A won claim: the recording as the session holds it now, and which attempt this is."""

    source_url: str
    expires_at: str | None
    attempt: int  # 1 for the first copy attempt of this session's recording
    last_error: str | None  # why the previous attempt failed, if one did


def claim_recording(vendor: str, session_id: str, claim: str, now: Any, seconds: float) -> RecordingClaim | None:
    """Take the session's recording for copying: only while it is pending and not claimed by a
    copier still within its time. Each claim counts an attempt on the item, so the number of
    fetches stays bounded however often a stream record is delivered. None when the claim lost.

    The URL to copy is the session's current one (a later event may have brought a fresh link
    while an earlier attempt failed), returned with the claim."""
    from datetime import timedelta

    reply = _conditional_update(
        "claim",
        Key=_session_key(vendor, session_id),
        UpdateExpression="SET recording_claim = :claim, recording_claim_until = :until ADD recording_attempts :one",
        ConditionExpression=(
            "recording_state = :pending AND attribute_exists(recording_source_url)"
            " AND (attribute_not_exists(recording_claim_until) OR recording_claim_until < :now)"
        ),
        ExpressionAttributeValues={
            ":claim": {"S": claim},
            ":until": {"S": format_utc(now + timedelta(seconds=seconds))},
            ":now": {"S": format_utc(now)},
            ":pending": {"S": RecordingState.PENDING.value},
            ":one": {"N": "1"},
        },
        ReturnValues="ALL_NEW",
    )
    if reply is None:
        return None
    recording = recording_from_item(reply["Attributes"])
    # The condition guarantees the URL, the ADD the count: the fallbacks never apply.
    return RecordingClaim(recording.source_url or "", recording.expires_at, recording.attempts or 1, recording.error)


def recording_claim(vendor: str, session_id: str) -> tuple[bool, str | None]:
    """Whether the session's recording is still pending, and until when a claim holds it (None:
    no claim), by a strongly consistent read: what a copier that lost its claim waits for."""
    key = _session_key(vendor, session_id)
    reply = _call("get", aws.dynamodb().get_item, TableName=settings().table_name, Key=key, ConsistentRead=True)
    item: Item = reply.get("Item") or {}
    until: str | None = item.get("recording_claim_until", {}).get("S")
    return item.get(recording_attr("state"), {}).get("S") == RecordingState.PENDING.value, until


def claim_embedded_recording(vendor: str, session_id: str, claim: str, now: Any, seconds: int) -> bool:
    """Take the session's recording for audio an event carried in its body: only while no
    recording is archived and no one (a copier fetching it from a link, another delivery) holds a
    claim still within its time; a pending or failed fetch gives way to the audio in hand. The
    session must exist (its event was recorded first) and not be erased. False when the claim lost.

    With `claim_recording` and `finish_recording` (both conditional on the claim), one of a link's
    copy and a body's audio is the session's recording, whichever claims first, and only that one
    is uploaded: never two objects, however the two interleave (DESIGN.md "Long calls' audio")."""
    from datetime import timedelta

    reply = _conditional_update(
        "claim",
        Key=_session_key(vendor, session_id),
        UpdateExpression="SET recording_claim = :claim, recording_claim_until = :until",
        ConditionExpression=(
            "attribute_exists(pk) AND attribute_not_exists(#erased)"
            " AND (attribute_not_exists(recording_state) OR recording_state <> :archived)"
            " AND (attribute_not_exists(recording_claim_until) OR recording_claim_until < :now)"
        ),
        ExpressionAttributeNames={"#erased": ERASED_ATTR},
        ExpressionAttributeValues={
            ":claim": {"S": claim},
            ":until": {"S": format_utc(now + timedelta(seconds=seconds))},
            ":now": {"S": format_utc(now)},
            ":archived": {"S": RecordingState.ARCHIVED.value},
        },
    )
    return reply is not None


def recording_of(vendor: str, session_id: str) -> Recording | None:
    """The session's recording as its item holds it now (a strongly consistent GetItem); None
    when there is no session or it was erased."""
    reply = _call(
        "get", aws.dynamodb().get_item, TableName=settings().table_name, Key=_session_key(vendor, session_id), ConsistentRead=True
    )
    item = reply.get("Item")
    return None if item is None or is_tombstone(item) else recording_from_item(item)


def release_recording(vendor: str, session_id: str, claim: str, reason: str) -> None:
    """Give the claim back after a transient failure, noting why: the next attempt may claim at once."""
    _conditional_update(
        "release",
        Key=_session_key(vendor, session_id),
        UpdateExpression="SET recording_error = :reason REMOVE recording_claim, recording_claim_until",
        ConditionExpression="recording_claim = :claim",
        ExpressionAttributeValues={":claim": {"S": claim}, ":reason": {"S": reason}},
    )


def finish_recording(vendor: str, session_id: str, claim: str, outcome: Recording) -> bool:
    """Write the copy's outcome (the fields set on `outcome`), if `claim` still holds the
    recording; the claim is removed, and so is an earlier attempt's error unless `outcome` has one."""
    names, values = {}, {":claim": {"S": claim}}
    sets = []
    for index, (name, value) in enumerate(recording_values(outcome).items()):
        names[f"#r{index}"] = name
        values[f":r{index}"] = value
        sets.append(f"#r{index} = :r{index}")
    removed = ["recording_claim", "recording_claim_until"] + ([] if outcome.error else [recording_attr("error")])
    reply = _conditional_update(
        "finish",
        Key=_session_key(vendor, session_id),
        UpdateExpression="SET " + ", ".join(sets) + " REMOVE " + ", ".join(removed),
        ConditionExpression="recording_claim = :claim",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )
    return reply is not None
