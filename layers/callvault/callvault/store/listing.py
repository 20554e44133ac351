"""Listing sessions (DESIGN.md "Listing uses a GSI", "Listing times"): the listing key a session
item carries, moved only when its time improves, and one page of a listing.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from callvault import aws
from callvault.config import settings
from callvault.models import SessionUpdate
from callvault.store.table import Item, _call, _conditional_update, _session_key
from callvault.store.tombstones import ERASED_ATTR

if TYPE_CHECKING:  # the event a write comes from; events.py imports this module
    from callvault.store.events import EventRecord


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
