"""DynamoDB: one event item per event and one session item per call, in one table.

Keys: `pk = "{vendor}#{digest}"`, the digest a SHA-256 of vendor and session id (`session_digest`;
the id itself is the attribute `session_id`); the session item has `sk = "SESSION"`, each event
`sk = "EVENT#{event_id}"`. Recording an event is a single TransactWriteItems: a Put of the
event item that fails if it exists (the idempotency key, kept forever) and an Update of the
session item. The two cannot disagree, and a duplicate writes nothing.

An erased session's tombstone is its session item, rewritten by the erasure to hold only its
keys, `vendor`, times and counts (`erased_at`, ...): the key names the session without holding
its id, and the session update's own condition (`attribute_not_exists(erased_at)`) refuses a
forgotten session, so the transaction needs no check of another item (DESIGN.md "Erasure").

The session update is written so that a status only moves forward: the first attempt sets the
event's status, guarded by `status_rank <= rank`; when the session is already further along (a
late event) the next attempt only fills attributes the session does not have yet.

The session item stays small whatever the call's length (DESIGN.md "Cost of a write"): DynamoDB
bills a write by the item's size, twice in a transaction. The transcript is not copied into it:
the item points at the raw body that carried the longest snapshot so far (`transcript`, a
reference) and keeps that snapshot's length (`transcript_turns`); the pointer moves only to a
snapshot at least as long, guarded like the status. Any other value past its inline bound is
such a reference too. The read API parses the referenced raw body again with the vendor's adapter.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from callvault import archive, aws
from callvault.config import settings
from callvault.errors import StorageUnavailable
from callvault.models import EventSource, Recording, RecordingState, SessionUpdate, format_utc
from callvault.observability import logger

SESSION_SK = "SESSION"
EVENT_SK_PREFIX = "EVENT#"
# Present on a session item only when it is a tombstone (callvault/erasure.py).
ERASED_ATTR = "erased_at"
VENDOR_FIELD_PREFIX = "vf:"
_CONFLICT_RETRIES = 5
# Inline bounds that keep a session item at about 2 KB whatever a vendor sends (each event
# rewrites the whole item, and pays for its size). A value past its bound is stored as a
# reference to the raw body that carried it, where the read API finds it.
MAX_SCALAR_BYTES = 4_096  # ids, numbers, times, reasons; the recording URL (the copier reads it here)
MAX_SUMMARY_BYTES = 2_048  # most summaries are a paragraph: listed without an S3 read
MAX_DOCUMENT_BYTES = 1_024  # agent, cost, each vendor field
MAX_VENDOR_FIELDS_BYTES = 1_024  # all vendor fields together
TRANSCRIPT_ATTR = "transcript"
METRICS_ATTR = "metrics"  # models.CallMetrics as JSON, its known fields only
TRANSCRIPT_TURNS_ATTR = "transcript_turns"
# A reference: {"M": {"raw": {"S": the raw body's key}}}; the bucket is the stack's, the webhook
# is in the key. A map, so it cannot be mistaken for an inline value (a string) under the same
# attribute name; the key alone, as every byte of a reference is paid on every later event.
REFERENCE_KEY = "raw"
# DynamoDB TTL (template: the table's TimeToLiveSpecification): epoch seconds past which an item
# has outlived the retention set for it. TTL deletes lazily; readers treat a past value as gone.
EXPIRES_ATTR = "expires_at"

Outcome = Literal["stored", "duplicate", "forgotten"]

# Listing (DESIGN.md "Listing uses a GSI"): two sparse, keys-only indexes share one sort key,
# `list_sk = "{listed_at}#{vendor}#{session_id}"` (the listing time, see `_listing_sets`; unique,
# so a position in a listing is one list_sk): `by-vendor` (partition: the vendor) and
# `by-vendor-status` (partition: "{vendor}#{status}"). A listing of one vendor is one Query
# reading only its page; a listing of every vendor is one such Query per known vendor, merged by
# list_sk. Each index entry is written only when its key changes (a new session, a status change,
# a better listing time), not on every event; two indexes rather than one per filter
# combination, as every entry is paid on every new session.
LIST_SK_ATTR = "list_sk"
VENDOR_STATUS_ATTR = "vendor_status"
INDEXES = {  # filter by status -> (index name, its partition key attribute)
    False: ("by-vendor", "vendor"),
    True: ("by-vendor-status", VENDOR_STATUS_ATTR),
}


def list_sort_key(listed_at: str, vendor: str, session_id: str) -> str:
    return f"{listed_at}#{vendor}#{session_id}"


def listed_at(item: Mapping[str, Any]) -> str | None:
    """The time a session item is listed by (DESIGN.md "Listing times"), from its listing key."""
    key = item.get(LIST_SK_ATTR, {}).get("S")
    return str(key).split("#", 1)[0] if key else None


# Listing times (DESIGN.md "Listing times"): a session is listed by the vendor's creation time,
# else the call's start time, else when callvault first heard of it, the best an event has told so
# far. `VENDOR_LIST_SK_ATTR` is a copy of `list_sk` present only once a vendor's time made it: an
# update expression cannot compare, but `if_not_exists` can keep a start time from replacing it.
# The key moves only when the time improves (a creation time, or a first vendor time after a
# first-heard one); a value written again unchanged moves no index entry.
VENDOR_LIST_SK_ATTR = "vendor_list_sk"


def _listing_sets(update: SessionUpdate) -> list[str]:
    """The SET clauses that move `list_sk` to `:list_sk` (made of the event's best time) when that
    time is better than the one the session is listed by."""
    if update.created_at is not None:  # the best there is: the key follows it (vendors repeat it)
        return [f"{LIST_SK_ATTR} = :list_sk", f"{VENDOR_LIST_SK_ATTR} = :list_sk"]
    if update.started_at is not None:  # better than first heard of, not than a vendor's time already told
        kept = f"if_not_exists({VENDOR_LIST_SK_ATTR}, :list_sk)"
        return [f"{LIST_SK_ATTR} = {kept}", f"{VENDOR_LIST_SK_ATTR} = {kept}"]
    return [f"{LIST_SK_ATTR} = if_not_exists({LIST_SK_ATTR}, :list_sk)"]  # first heard of: never moves


def improve_listing(record: EventRecord, update: SessionUpdate) -> bool:
    """Move an existing session's listing key to the time `update` tells, when it is better than
    the one the session is listed by (a replayed event, stored before listing times: its
    transaction is a duplicate and writes nothing). One conditional UpdateItem, and none when the
    event tells no vendor time; True when the key moved."""
    vendor_time = update.created_at or update.started_at
    if vendor_time is None:
        return False
    key = {"S": list_sort_key(vendor_time, record.vendor, record.session_id)}
    names = {"#erased": ERASED_ATTR, "#list": LIST_SK_ATTR, "#vendor_list": VENDOR_LIST_SK_ATTR}
    values: dict[str, Any] = {":list_sk": key}
    sets = ["#list = :list_sk", "#vendor_list = :list_sk"]
    if update.created_at is not None:  # unless already listed by exactly this time
        values[":created"] = {"S": update.created_at}
        sets.append("created_at = :created")
        better = "(attribute_not_exists(#vendor_list) OR #list <> :list_sk)"
    else:  # only over a first-heard time (sessions stored before listing times have no marker)
        better = "attribute_not_exists(#vendor_list) AND attribute_not_exists(created_at)"
    reply = _conditional_update(
        "relist",
        Key=_session_key(record.vendor, record.session_id),
        UpdateExpression="SET " + ", ".join(sets),
        ConditionExpression=f"attribute_exists(pk) AND attribute_not_exists(#erased) AND {better}",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )
    return reply is not None


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
    source: EventSource = "webhook"


def session_pk(vendor: str, session_id: str) -> str:
    """The partition of a session's items: the vendor (IAM's LeadingKeys are per vendor) and a
    digest of the id, so that the tombstone an erasure leaves there names no one."""
    return f"{vendor}#{session_digest(vendor, session_id)}"


def _session_key(vendor: str, session_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": session_pk(vendor, session_id)}, "sk": {"S": SESSION_SK}}


def session_digest(vendor: str, session_id: str) -> str:
    """A SHA-256 that names a session without holding its id (keys, tombstones, erasure logs)."""
    return hashlib.sha256(f"{vendor}\0{session_id}".encode()).hexdigest()


def is_tombstone(item: Mapping[str, Any] | None) -> bool:
    """True when `item` (DynamoDB form) is an erased session's tombstone."""
    return item is not None and ERASED_ATTR in item


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


def reference(raw_s3_uri: str) -> dict[str, Any]:
    """A session attribute that points at the raw body holding its value."""
    return {"M": {REFERENCE_KEY: {"S": archive.key_of(raw_s3_uri)}}}


def referenced(value: dict[str, Any]) -> tuple[str, str] | None:
    """The raw body's URI and webhook when `value` is a reference, else None."""
    inner = value.get("M")
    if not isinstance(inner, dict) or REFERENCE_KEY not in inner:
        return None
    key = inner[REFERENCE_KEY]["S"]
    return archive.s3_uri(key), archive.raw_key_webhook(key)


def session_attributes(update: SessionUpdate, source: EventRecord | None) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The session attributes an event sets, as DynamoDB values, and the names of those left out.
    Absent facts are left out, and so are values DynamoDB cannot hold (a number out of its range).

    A value past its inline bound becomes a reference to `source`'s raw body, which holds it;
    with no `source` every value is given inline (the read API, resolving a reference). The
    transcript is not among these: `record_event` points at it under its own guard.
    """
    attrs: dict[str, dict[str, Any]] = {}
    oversized: list[str] = []
    budget = MAX_VENDOR_FIELDS_BYTES

    def put(name: str, value: dict[str, Any], limit: int) -> int:
        size = len(next(iter(value.values())).encode())
        if source is None or size <= limit:
            attrs[name] = value
            return size
        attrs[name] = reference(source.raw_s3_uri)
        return 0

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
    if update.metrics is not None:  # the known ones only: about 130 bytes for all five
        put(METRICS_ATTR, _json(update.metrics.model_dump(exclude_none=True)), MAX_DOCUMENT_BYTES)
    if update.recording_url is not None:
        # Inline or not at all: the copier's claim and the stream filter read it from the item.
        recording = recording_values(Recording(source_url=update.recording_url, expires_at=update.recording_expires_at))
        if len(update.recording_url.encode()) <= MAX_SCALAR_BYTES or source is None:
            attrs.update(recording)
        else:
            oversized.append(recording_attr("source_url"))
    for key, value in update.vendor_fields.items():
        budget -= put(VENDOR_FIELD_PREFIX + key, _json(value), min(MAX_DOCUMENT_BYTES, budget))
    return attrs, oversized


def partial_documents(update: SessionUpdate) -> set[str]:
    """The documents this event knows only in part (a field of them absent): they fill a session
    that lacks them but never replace what another event told in full (a status-update's bare
    agent id after the end-of-call report's id and name)."""
    documents = {"agent": update.agent, "cost": update.cost}
    partial = {name for name, value in documents.items() if value is not None and None in value.model_dump().values()}
    # A vendor never tells some metrics: a report is partial when it lacks one its vendor tells.
    return partial | ({METRICS_ATTR} if update.metrics is not None and update.metrics.partial else set())


def transcript_turns(update: SessionUpdate) -> int:
    """The length of the transcript snapshot an event carries (0: none, or empty)."""
    return update.transcript_turns or 0


def _session_update(
    record: EventRecord,
    update: SessionUpdate,
    *,
    advance_status: bool,
    move_transcript: bool,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        ":vendor": {"S": record.vendor},
        ":session_id": {"S": record.session_id},
        ":now": {"S": record.received_at},
        ":one": {"N": "1"},
    }
    sets = [
        "vendor = :vendor",
        "session_id = :session_id",
        "updated_at = :now",  # (no first-seen time of its own: list_sk has it until a vendor's time comes)
    ]
    # A forgotten session's item is its tombstone: the transaction refuses to write it again.
    names: dict[str, str] = {"#erased": ERASED_ATTR}
    conditions: list[str] = ["attribute_not_exists(#erased)"]
    if update.created_at is not None:
        values[":created"] = {"S": update.created_at}
        sets.append("created_at = :created")
    listing_time = update.created_at or update.started_at or record.received_at
    values[":list_sk"] = {"S": list_sort_key(listing_time, record.vendor, record.session_id)}
    sets += _listing_sets(update)
    attributes, oversized = session_attributes(update, record)
    if oversized:
        logger.warning("session attributes left out", fields=oversized, event_id=record.event_id)
    fill_only = partial_documents(update)
    for index, (name, value) in enumerate(attributes.items()):
        names[f"#a{index}"], values[f":a{index}"] = name, value
        replace = advance_status and name not in fill_only
        sets.append(f"#a{index} = :a{index}" if replace else f"#a{index} = if_not_exists(#a{index}, :a{index})")
    if move_transcript:  # a snapshot at least as long as the one pointed at: point at this body
        names["#transcript"], names["#turns"] = TRANSCRIPT_ATTR, TRANSCRIPT_TURNS_ATTR
        values[":transcript"] = reference(record.raw_s3_uri)
        values[":turns"] = {"N": str(transcript_turns(update))}
        sets.append("#transcript = :transcript, #turns = :turns")
        conditions.append("(attribute_not_exists(#turns) OR #turns <= :turns)")
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
        conditions.append("(attribute_not_exists(status_rank) OR status_rank <= :rank)")
    item["ConditionExpression"] = " AND ".join(conditions)
    # On failure DynamoDB returns the item as it is, so the retry knows which guard failed
    # (or that the item is a tombstone).
    item["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    item["UpdateExpression"] = "SET " + ", ".join(sets) + " ADD event_count :one"
    item["ExpressionAttributeValues"] = values
    item["ExpressionAttributeNames"] = names
    return item


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


def _listing_partitions(vendor: str | None, status: str | None) -> list[str]:
    from callvault import vendors  # the registry: each vendor's sessions are one partition

    listed = [vendor] if vendor else sorted(vendors.known())
    return [f"{v}#{status}" for v in listed] if status else listed


def query_listing(
    *, vendor: str | None, status: str | None, lowest: str, highest: str, limit: int, start_key: Item | None
) -> tuple[list[Item], Item | None]:
    """One page of session keys, newest first, with `list_sk` between `lowest` and `highest` and
    below `start_key`'s (exclusive); and the position to resume from (`{"list_sk": ...}`), if any.

    One Query of at most `limit` keys per partition the filters name (the vendor's, or each
    known vendor's when no vendor is given) on the index of the status filter, merged by
    `list_sk` (unique: it ends with the vendor and the session id)."""
    index, partition_attr = INDEXES[status is not None]
    after = start_key[LIST_SK_ATTR]["S"] if start_key else None
    top = min(highest, after) if after is not None else highest
    client = aws.dynamodb()

    # BETWEEN is inclusive: the partition holding the position itself reads one key more.
    holder = after.split("#")[1] if after is not None else None

    def query(partition: str) -> dict[str, Any]:
        page: dict[str, Any] = _call(
            "query",
            client.query,
            TableName=settings().table_name,
            IndexName=index,
            KeyConditionExpression="#p = :p AND #s BETWEEN :lo AND :hi",
            ExpressionAttributeNames={"#p": partition_attr, "#s": LIST_SK_ATTR},
            ExpressionAttributeValues={":p": {"S": partition}, ":lo": {"S": lowest}, ":hi": {"S": top}},
            ScanIndexForward=False,
            Limit=limit + 1 if partition.split("#")[0] == holder else limit,
        )
        return page

    partitions = _listing_partitions(vendor, status)
    if len(partitions) == 1:
        pages = [query(partitions[0])]
    else:  # the Queries overlap: each waits on the network, not on this function's CPU
        with ThreadPoolExecutor(max_workers=len(partitions)) as pool:
            pages = list(pool.map(query, partitions))
    found = [key for page in pages for key in page.get("Items", []) if key[LIST_SK_ATTR]["S"] != after]
    more = any("LastEvaluatedKey" in page for page in pages)
    found.sort(key=lambda key: key[LIST_SK_ATTR]["S"], reverse=True)
    keys = found[:limit]
    if keys and (more or len(found) > limit):
        return keys, {LIST_SK_ATTR: keys[-1][LIST_SK_ATTR]}
    return keys, None


def get_sessions(keys: list[Item]) -> list[Item]:
    """The session items for `keys` (pk/sk pairs), in the order of `keys`; missing ones and
    tombstones (an index entry not yet removed from an eventually consistent index) left out."""
    wanted = [{"pk": key["pk"], "sk": key["sk"]} for key in keys]
    found: dict[tuple[str, str], Item] = {}
    pending: dict[str, Any] = {settings().table_name: {"Keys": wanted}} if wanted else {}
    attempt = 0
    while pending:
        reply = _call("batch get", aws.dynamodb().batch_get_item, RequestItems=pending)
        for item in reply.get("Responses", {}).get(settings().table_name, []):
            if not is_tombstone(item):
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
    key = _session_key(vendor, session_id)
    reply = _call("get", aws.dynamodb().get_item, TableName=settings().table_name, Key=key, ConsistentRead=True)
    found: Item | None = reply.get("Item")
    return found if is_tombstone(found) else None


def put_tombstone(vendor: str, session_id: str, attributes: dict[str, str | int]) -> None:
    """Replace the session item with its tombstone, holding `attributes` (`erased_at` among them:
    times and counts, nothing personal) beside its keys and vendor. The tombstone has none of the
    listing indexes' keys but `vendor`, so no index lists it."""
    if ERASED_ATTR not in attributes:
        raise ValueError(f"a tombstone needs {ERASED_ATTR}")
    item: Item = {**_session_key(vendor, session_id), "vendor": {"S": vendor}}
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


# Reconcile: what a session already knows, and each vendor's watermark.

WATERMARK_SK = "WATERMARK"


def watermark_pk(vendor: str) -> str:
    return f"reconcile#{vendor}"


# What status_rank answers for an erased session (its tombstone is in the session item's place).
ERASED_RANK = -1


def status_rank(vendor: str, session_id: str) -> int | None:
    """How far the session has got (its status rank, 0 before any status); ERASED_RANK for an
    erased session; None when there is no session. One GetItem."""
    reply = _call(
        "get",
        aws.dynamodb().get_item,
        TableName=settings().table_name,
        Key=_session_key(vendor, session_id),
        ProjectionExpression="pk, status_rank, #erased",
        ExpressionAttributeNames={"#erased": ERASED_ATTR},
    )
    item = reply.get("Item")
    if not item:
        return None
    if ERASED_ATTR in item:
        return ERASED_RANK
    return int(item.get("status_rank", {}).get("N", "0"))


def get_watermark(vendor: str) -> str | None:
    """The end of `vendor`'s last complete reconcile pass (ISO 8601 UTC), if any."""
    reply = _call(
        "get",
        aws.dynamodb().get_item,
        TableName=settings().table_name,
        Key={"pk": {"S": watermark_pk(vendor)}, "sk": {"S": WATERMARK_SK}},
        ConsistentRead=True,
    )
    value = reply.get("Item", {}).get("watermark", {}).get("S")
    return str(value) if value is not None else None


def advance_watermark(vendor: str, moment: str) -> None:
    """Move `vendor`'s watermark to `moment`, never back (two passes may finish out of order)."""
    _conditional_update(
        "watermark",
        Key={"pk": {"S": watermark_pk(vendor)}, "sk": {"S": WATERMARK_SK}},
        UpdateExpression="SET watermark = :moment",
        ConditionExpression="attribute_not_exists(watermark) OR watermark < :moment",
        ExpressionAttributeValues={":moment": {"S": moment}},
    )
