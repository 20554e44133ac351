"""The session item: the attributes an event sets in it, kept small, and reading sessions back.

The session item stays small whatever the call's length (DESIGN.md "Cost of a write"): DynamoDB
bills a write by the item's size, twice in a transaction. The transcript is not copied into it:
the item points at the raw body that carried the longest snapshot so far (`transcript`, a
reference) and keeps that snapshot's length (`transcript_turns`); the pointer moves only to a
snapshot at least as long, guarded like the status. Any other value past its inline bound is
such a reference too. The read API parses the referenced raw body again with the vendor's adapter.
"""

from __future__ import annotations

import random
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from callvault import archive, aws
from callvault.config import settings
from callvault.errors import StorageUnavailable
from callvault.jsonbody import dump_json
from callvault.models import SessionUpdate
from callvault.store.recordings import recording_attr, recording_source_values
from callvault.store.table import _CONFLICT_RETRIES, Item, _call, _session_key, session_pk
from callvault.store.tombstones import ERASED_ATTR, is_tombstone

if TYPE_CHECKING:  # the event a write comes from; events.py imports this module
    from callvault.store.events import EventRecord


VENDOR_FIELD_PREFIX = "vf:"
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


def _number(value: float | int) -> dict[str, str] | None:
    """A DynamoDB number, or None past its range (magnitudes 1E-130 to 1E+126)."""
    if value != 0 and not 1e-130 <= abs(value) < 1e125:
        return None
    return {"N": str(Decimal(repr(value)))}


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

    def put(name: str, text: str, limit: int) -> int:
        size = len(text) if text.isascii() else len(text.encode())
        if source is None or size <= limit:
            attrs[name] = {"S": text}
            return size
        attrs[name] = reference(source.raw_s3_uri)
        return 0

    for name in ("channel", "from_number", "to_number", "started_at", "ended_at", "ended_reason"):
        value = getattr(update, name)
        if value is not None:
            put(name, str(value), MAX_SCALAR_BYTES)
    if update.summary is not None:
        put("summary", update.summary, MAX_SUMMARY_BYTES)
    if update.duration_seconds is not None:
        duration = _number(update.duration_seconds)
        if duration is None:
            oversized.append("duration_seconds")
        else:
            attrs["duration_seconds"] = duration
    if update.agent is not None:
        put("agent", update.agent.model_dump_json(), MAX_DOCUMENT_BYTES)
    if update.cost is not None:
        put("cost", update.cost.model_dump_json(), MAX_DOCUMENT_BYTES)
    if update.metrics is not None:  # the known ones only: about 130 bytes for all five
        put(METRICS_ATTR, update.metrics.model_dump_json(exclude_none=True), MAX_DOCUMENT_BYTES)
    if update.recording_url is not None:
        # Inline or not at all: the copier's claim and the stream filter read it from the item.
        if len(update.recording_url.encode()) <= MAX_SCALAR_BYTES or source is None:
            attrs.update(recording_source_values(update.recording_url, update.recording_expires_at))
        else:
            oversized.append(recording_attr("source_url"))
    for key, value in update.vendor_fields.items():
        budget -= put(VENDOR_FIELD_PREFIX + key, dump_json(value).decode(), min(MAX_DOCUMENT_BYTES, budget))
    return attrs, oversized


def partial_documents(update: SessionUpdate) -> set[str]:
    """The documents this event knows only in part (a field of them absent): they fill a session
    that lacks them but never replace what another event told in full (a status-update's bare
    agent id after the end-of-call report's id and name)."""
    documents = {"agent": update.agent, "cost": update.cost}
    partial = {
        name
        for name, value in documents.items()
        if value is not None and any(getattr(value, field) is None for field in type(value).model_fields)
    }
    # A vendor never tells some metrics: a report is partial when it lacks one its vendor tells.
    return partial | ({METRICS_ATTR} if update.metrics is not None and update.metrics.partial else set())


def transcript_turns(update: SessionUpdate) -> int:
    """The length of the transcript snapshot an event carries (0: none, or empty)."""
    return update.transcript_turns or 0


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
