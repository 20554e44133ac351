"""DynamoDB: one event item per event and one session item per call, in one table.

Keys: `pk = "{vendor}#{session_id}"`; the session item has `sk = "SESSION"`, each event
`sk = "EVENT#{event_id}"`. Recording an event is a single TransactWriteItems: a Put of the
event item that fails if it exists (the idempotency key, kept forever) and an Update of the
session item. The two cannot disagree, and a duplicate writes nothing.

The session update is written so that a status only moves forward: the first attempt sets the
event's status, guarded by `status_rank <= rank`; when the session is already further along (a
late event) the second attempt only fills attributes the session does not have yet.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from callvault import aws
from callvault.config import settings
from callvault.errors import StorageUnavailable
from callvault.models import Recording, RecordingState, SessionUpdate, format_utc
from callvault.observability import logger

SESSION_SK = "SESSION"
EVENT_SK_PREFIX = "EVENT#"
TOMBSTONE_SK = "TOMBSTONE"
VENDOR_FIELD_PREFIX = "vf:"
_CONFLICT_RETRIES = 5
# Bounds that keep a session item far below DynamoDB's 400 KB whatever a vendor sends: a value
# past its bound is left out of the item (the raw payload in S3 still has it).
MAX_SCALAR_BYTES = 4_096
MAX_SUMMARY_BYTES = 32_768
MAX_DOCUMENT_BYTES = 16_384  # agent, cost, each vendor field
MAX_VENDOR_FIELDS_BYTES = 65_536
# DynamoDB TTL (template: the table's TimeToLiveSpecification): epoch seconds past which an item
# has outlived the retention set for it. TTL deletes lazily; readers treat a past value as gone.
EXPIRES_ATTR = "expires_at"

Outcome = Literal["stored", "duplicate", "forgotten"]

# Listing (DESIGN.md "Listing uses a GSI"): four sparse, keys-only indexes share one sort key,
# `list_sk = "{created_at}#{vendor}#{session_id}"`, so that any combination of the vendor and
# status filters is one Query, newest first, reading only the page. Keys-only: an index entry
# is rewritten only when a key changes (a new session, a status change), not on every event.
LIST_SK_ATTR = "list_sk"
LIST_ALL_ATTR = "list_all"
LIST_ALL = "session"
VENDOR_STATUS_ATTR = "vendor_status"
INDEXES = {  # (filter by vendor, filter by status) -> (index name, its partition key attribute)
    (False, False): ("by-created", LIST_ALL_ATTR),
    (True, False): ("by-vendor", "vendor"),
    (False, True): ("by-status", "status"),
    (True, True): ("by-vendor-status", VENDOR_STATUS_ATTR),
}


def list_sort_key(created_at: str, vendor: str, session_id: str) -> str:
    return f"{created_at}#{vendor}#{session_id}"


# A session's recording lives in the session item as one attribute per field of `Recording`,
# named `recording_<field>`. Every writer (ingest, the copier) and the reader (the read API) go
# through these functions, so a field the model gains is written and read back with no list to keep.
RECORDING_ATTR_PREFIX = "recording_"


def recording_attr(field: str) -> str:
    """The session item attribute holding `Recording.<field>`."""
    if field not in Recording.model_fields:
        raise KeyError(f"Recording has no field {field!r}")
    return RECORDING_ATTR_PREFIX + field


def recording_values(recording: Recording) -> dict[str, dict[str, str]]:
    """The fields set on `recording` (those given when it was made), as session item attributes."""
    values: dict[str, dict[str, str]] = {}
    for field, value in recording.model_dump(mode="json", exclude_unset=True).items():
        if value is not None:
            values[recording_attr(field)] = {"N": str(value)} if type(value) is int else {"S": str(value)}
    return values


def recording_from_item(item: Item) -> Recording:
    """The recording a session item (DynamoDB form) holds; absent fields null, state `none`."""
    stored = {field: item.get(recording_attr(field)) for field in Recording.model_fields}
    # Both S and N come as strings; the model gives each field its type.
    return Recording.model_validate({field: next(iter(v.values())) for field, v in stored.items() if v})


@dataclass(frozen=True, slots=True)
class EventRecord:
    vendor: str
    session_id: str
    event_id: str
    event_type: str
    webhook: str
    received_at: str
    raw_s3_uri: str


def session_pk(vendor: str, session_id: str) -> str:
    return f"{vendor}#{session_id}"


def _session_key(vendor: str, session_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": session_pk(vendor, session_id)}, "sk": {"S": SESSION_SK}}


def session_digest(vendor: str, session_id: str) -> str:
    """A SHA-256 that names a session without holding its id (tombstones, erasure logs)."""
    return hashlib.sha256(f"{vendor}\0{session_id}".encode()).hexdigest()


def tombstone_key(vendor: str, session_id: str) -> dict[str, dict[str, str]]:
    """Where an erased session's tombstone lives: under the digest of its id, so that no item
    names the session once it is forgotten, yet every delivery can find it (DESIGN "Erasure")."""
    return {"pk": {"S": f"{vendor}#{session_digest(vendor, session_id)}"}, "sk": {"S": TOMBSTONE_SK}}


def _retention_expiry(received_at: str) -> dict[str, str] | None:
    """The TTL (epoch seconds) of an item written at `received_at`, or None when kept for ever."""
    days = settings().transcript_retention_days
    if not days:
        return None
    written = datetime.fromisoformat(received_at.replace("Z", "+00:00"))
    return {"N": str(int(written.timestamp()) + days * 86_400)}


def _number(value: float | int) -> dict[str, str] | None:
    """A DynamoDB number, or None past its range (magnitudes 1E-130 to 1E+126)."""
    if value != 0 and not 1e-130 <= abs(value) < 1e125:
        return None
    return {"N": str(Decimal(repr(value)))}


def _json(value: Any) -> dict[str, str]:
    return {"S": json.dumps(value, separators=(",", ":"), ensure_ascii=False)}


def session_attributes(update: SessionUpdate, transcript: str | None) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The session attributes an event sets, as DynamoDB values, and the names of those left
    out for being past their size bound. Absent facts are left out too.

    `transcript` is the transcript as stored: inline JSON, or the `s3://` URI it was moved to.
    """
    attrs: dict[str, dict[str, Any]] = {}
    oversized: list[str] = []

    def put(name: str, value: dict[str, Any], limit: int) -> None:
        if len(next(iter(value.values())).encode()) <= limit:
            attrs[name] = value
        else:
            oversized.append(name)

    for name in ("channel", "from_number", "to_number", "started_at", "ended_at", "ended_reason"):
        value = getattr(update, name)
        if value is not None:
            put(name, {"S": str(value)}, MAX_SCALAR_BYTES)
    if update.summary is not None:
        put("summary", {"S": update.summary}, MAX_SUMMARY_BYTES)
    if update.duration_seconds is not None:
        duration = _number(update.duration_seconds)
        if duration is None:
            oversized.append("duration_seconds")
        else:
            attrs["duration_seconds"] = duration
    if update.agent is not None:
        put("agent", _json(update.agent.model_dump()), MAX_DOCUMENT_BYTES)
    if update.cost is not None:
        put("cost", _json(update.cost.model_dump()), MAX_DOCUMENT_BYTES)
    if update.recording_url is not None:
        source = recording_values(Recording(source_url=update.recording_url, expires_at=update.recording_expires_at))
        put(recording_attr("source_url"), source.pop(recording_attr("source_url")), MAX_SCALAR_BYTES)
        if recording_attr("source_url") in attrs:
            attrs.update(source)
    if transcript is not None:
        attrs["transcript"] = {"S": transcript}
    budget = MAX_VENDOR_FIELDS_BYTES
    for key, value in update.vendor_fields.items():
        encoded = _json(value)
        size = len(encoded["S"].encode())
        if size <= min(MAX_DOCUMENT_BYTES, budget):
            attrs[VENDOR_FIELD_PREFIX + key] = encoded
            budget -= size
        else:
            oversized.append(VENDOR_FIELD_PREFIX + key)
    return attrs, oversized


def _session_update(
    record: EventRecord, update: SessionUpdate, transcript: str | None, *, advance_status: bool
) -> dict[str, Any]:
    names: dict[str, str] = {}
    values: dict[str, Any] = {
        ":vendor": {"S": record.vendor},
        ":session_id": {"S": record.session_id},
        ":now": {"S": record.received_at},
        ":one": {"N": "1"},
        ":all": {"S": LIST_ALL},
    }
    sets = [
        "vendor = :vendor",
        "session_id = :session_id",
        "updated_at = :now",
        "first_seen_at = if_not_exists(first_seen_at, :now)",
        f"{LIST_ALL_ATTR} = :all",
    ]
    if update.created_at is not None:
        # The vendor's creation time and the listing key move together (vendors repeat it).
        values[":created"] = {"S": update.created_at}
        values[":list_sk"] = {"S": list_sort_key(update.created_at, record.vendor, record.session_id)}
        sets += ["created_at = :created", f"{LIST_SK_ATTR} = :list_sk"]
    else:  # listed by when callvault first heard of it, until an event gives the creation time
        values[":list_sk"] = {"S": list_sort_key(record.received_at, record.vendor, record.session_id)}
        sets.append(f"{LIST_SK_ATTR} = if_not_exists({LIST_SK_ATTR}, :list_sk)")
    attributes, oversized = session_attributes(update, transcript)
    if oversized:
        logger.warning("session attributes left out for size", fields=oversized, event_id=record.event_id)
    for index, (name, value) in enumerate(attributes.items()):
        names[f"#a{index}"], values[f":a{index}"] = name, value
        sets.append(f"#a{index} = :a{index}" if advance_status else f"#a{index} = if_not_exists(#a{index}, :a{index})")
    if update.recording_url is not None:
        values[":pending"] = recording_values(Recording(state=RecordingState.PENDING))[recording_attr("state")]
        sets.append(f"{recording_attr('state')} = if_not_exists({recording_attr('state')}, :pending)")
    expiry = _retention_expiry(record.received_at)
    if expiry is not None:  # the session lives as long after its last event as an event does
        values[":expires"] = expiry
        sets.append(f"{EXPIRES_ATTR} = :expires")
    item: dict[str, Any] = {
        "TableName": settings().table_name,
        "Key": _session_key(record.vendor, record.session_id),
    }
    if advance_status and update.status is not None:
        names["#status"] = "status"
        values[":status"] = {"S": update.status.value}
        values[":rank"] = {"N": str(update.status.rank)}
        values[":vendor_status"] = {"S": f"{record.vendor}#{update.status.value}"}
        sets.append(f"#status = :status, status_rank = :rank, {VENDOR_STATUS_ATTR} = :vendor_status")
        item["ConditionExpression"] = "attribute_not_exists(status_rank) OR status_rank <= :rank"
    item["UpdateExpression"] = "SET " + ", ".join(sets) + " ADD event_count :one"
    item["ExpressionAttributeValues"] = values
    if names:
        item["ExpressionAttributeNames"] = names
    return item


def _event_put(record: EventRecord) -> dict[str, Any]:
    item = {
        "pk": {"S": session_pk(record.vendor, record.session_id)},
        "sk": {"S": EVENT_SK_PREFIX + record.event_id},
        "event_id": {"S": record.event_id},
        "type": {"S": record.event_type},
        "webhook": {"S": record.webhook},
        "received_at": {"S": record.received_at},
        "raw_s3_uri": {"S": record.raw_s3_uri},
    }
    expiry = _retention_expiry(record.received_at)
    if expiry is not None:
        item[EXPIRES_ATTR] = expiry
    return {"TableName": settings().table_name, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}


def _not_forgotten(record: EventRecord) -> dict[str, Any]:
    # The transaction refuses to write a session erased meanwhile (an erasure writes its tombstone first).
    return {
        "TableName": settings().table_name,
        "Key": tombstone_key(record.vendor, record.session_id),
        "ConditionExpression": "attribute_not_exists(pk)",
    }


def record_event(record: EventRecord, update: SessionUpdate, transcript: str | None) -> Outcome:
    """Store the event and merge it into its session, exactly once.

    "duplicate" when the event was stored before, "forgotten" when the session was erased
    (nothing is written either way). Raises StorageUnavailable when DynamoDB cannot be
    written; then nothing was.
    """
    advance = update.status is not None
    conflicts = 0
    while True:
        items = [
            {"Put": _event_put(record)},
            {"Update": _session_update(record, update, transcript, advance_status=advance)},
            {"ConditionCheck": _not_forgotten(record)},
        ]
        try:
            aws.dynamodb().transact_write_items(TransactItems=items)  # type: ignore[arg-type,unused-ignore]
            return "stored"
        except ClientError as exc:
            if aws.error_code(exc) != "TransactionCanceledException":
                raise StorageUnavailable(f"dynamodb write failed: {aws.error_code(exc)}") from exc
            codes = [reason.get("Code") for reason in exc.response.get("CancellationReasons", [])]
            if codes[2:3] == ["ConditionalCheckFailed"]:
                return "forgotten"
            if codes[:1] == ["ConditionalCheckFailed"]:
                return "duplicate"
            if advance and codes[1:2] == ["ConditionalCheckFailed"]:
                advance = False  # the session is further along: fill gaps, keep its status
                continue
            if "TransactionConflict" in codes and conflicts < _CONFLICT_RETRIES:
                conflicts += 1
                time.sleep(random.uniform(0, 0.02 * 2**conflicts))  # noqa: S311 - retry jitter, not a secret  # nosec B311
                continue
            raise StorageUnavailable(f"dynamodb transaction cancelled: {codes}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"dynamodb write failed: {type(exc).__name__}") from exc


# Reading (the read API). Items come back in DynamoDB's attribute-value form.

Item = dict[str, Any]


def _call(operation: str, call: Any, **kwargs: Any) -> Any:
    """`call(**kwargs)`, DynamoDB's errors raised as StorageUnavailable (the error in `__cause__`)."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        raise StorageUnavailable(f"dynamodb {operation} failed: {aws.error_code(exc)}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"dynamodb {operation} failed: {type(exc).__name__}") from exc


def query_listing(
    *, vendor: str | None, status: str | None, lowest: str, highest: str, limit: int, start_key: Item | None
) -> tuple[list[Item], Item | None]:
    """One page of session keys from the listing index that fits the filters, newest first,
    with `list_sk` between `lowest` and `highest`; and the key to resume from, if any."""
    index, partition_attr = INDEXES[(vendor is not None, status is not None)]
    partition = f"{vendor}#{status}" if vendor and status else vendor or status or LIST_ALL
    kwargs: dict[str, Any] = {
        "TableName": settings().table_name,
        "IndexName": index,
        "KeyConditionExpression": "#p = :p AND #s BETWEEN :lo AND :hi",
        "ExpressionAttributeNames": {"#p": partition_attr, "#s": LIST_SK_ATTR},
        "ExpressionAttributeValues": {":p": {"S": partition}, ":lo": {"S": lowest}, ":hi": {"S": highest}},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if start_key:
        kwargs["ExclusiveStartKey"] = start_key
    page = _call("query", aws.dynamodb().query, **kwargs)
    return page.get("Items", []), page.get("LastEvaluatedKey")


def get_sessions(keys: list[Item]) -> list[Item]:
    """The session items for `keys` (pk/sk pairs), in the order of `keys`; missing ones left out."""
    wanted = [{"pk": key["pk"], "sk": key["sk"]} for key in keys]
    found: dict[tuple[str, str], Item] = {}
    pending: dict[str, Any] = {settings().table_name: {"Keys": wanted}} if wanted else {}
    attempt = 0
    while pending:
        reply = _call("batch get", aws.dynamodb().batch_get_item, RequestItems=pending)
        for item in reply.get("Responses", {}).get(settings().table_name, []):
            found[(item["pk"]["S"], item["sk"]["S"])] = item
        pending = reply.get("UnprocessedKeys") or {}
        if pending:  # throttled in part: back off, then ask for the rest
            attempt += 1
            if attempt > _CONFLICT_RETRIES:
                raise StorageUnavailable("dynamodb batch get kept leaving keys unprocessed")
            time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - retry jitter, not a secret  # nosec B311
    return [found[key] for key in ((k["pk"]["S"], k["sk"]["S"]) for k in wanted) if key in found]


def session_items(vendor: str, session_id: str, *, consistent: bool = False) -> list[Item]:
    """Every item of one session: the session item and its events (all pages)."""
    items: list[Item] = []
    kwargs: dict[str, Any] = {
        "TableName": settings().table_name,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": session_pk(vendor, session_id)}},
        "ConsistentRead": consistent,
    }
    while True:
        page = _call("query", aws.dynamodb().query, **kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def expired(item: Item, now: float) -> bool:
    """True when the item has outlived its retention (TTL may not have deleted it yet)."""
    expires = item.get(EXPIRES_ATTR, {}).get("N")
    return expires is not None and float(expires) <= now


# Erasure (callvault/erasure.py): the tombstone, and deleting a session's items.


def tombstone(vendor: str, session_id: str) -> Item | None:
    """The session's tombstone if it was erased (a strongly consistent read), else None."""
    key = tombstone_key(vendor, session_id)
    reply = _call("get", aws.dynamodb().get_item, TableName=settings().table_name, Key=key, ConsistentRead=True)
    found: Item | None = reply.get("Item")
    return found


def put_tombstone(vendor: str, session_id: str, attributes: dict[str, str | int]) -> None:
    """Write (or rewrite) the session's tombstone with `attributes`: times and counts, nothing personal."""
    item: Item = {**tombstone_key(vendor, session_id), "vendor": {"S": vendor}}
    for name, value in attributes.items():
        item[name] = {"N": str(value)} if isinstance(value, int) else {"S": value}
    _call("put", aws.dynamodb().put_item, TableName=settings().table_name, Item=item)


def delete_items(keys: list[Item]) -> None:
    """Delete the items with these keys (pk/sk pairs), 25 to a request, retrying what is left unprocessed."""
    for start in range(0, len(keys), 25):
        pending = [{"DeleteRequest": {"Key": {"pk": k["pk"], "sk": k["sk"]}}} for k in keys[start : start + 25]]
        attempt = 0
        while pending:
            reply = _call("batch write", aws.dynamodb().batch_write_item, RequestItems={settings().table_name: pending})
            pending = reply.get("UnprocessedItems", {}).get(settings().table_name, [])
            if pending:
                attempt += 1
                if attempt > _CONFLICT_RETRIES:
                    raise StorageUnavailable("dynamodb batch write kept leaving items unprocessed")
                time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - retry jitter, not a secret  # nosec B311


# Recordings: a claim on the session's recording, so one copier copies it once.


def _conditional_update(operation: str, **kwargs: Any) -> dict[str, Any] | None:
    """An UpdateItem that may find its condition false (None), else DynamoDB's reply; StorageUnavailable on failure."""
    try:
        reply: dict[str, Any] = _call(operation, aws.dynamodb().update_item, TableName=settings().table_name, **kwargs)
        return reply
    except StorageUnavailable as exc:
        if aws.error_code(exc.__cause__) == "ConditionalCheckFailedException":
            return None
        raise


@dataclass(frozen=True, slots=True)
class RecordingClaim:
    """A won claim: the recording as the session holds it now, and which attempt this is."""

    source_url: str
    expires_at: str | None
    attempt: int  # 1 for the first copy attempt of this session's recording
    last_error: str | None  # why the previous attempt failed, if one did


def claim_recording(vendor: str, session_id: str, claim: str, now: Any, seconds: int) -> RecordingClaim | None:
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
