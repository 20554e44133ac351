"""Erasure (callvault/erasure.py): the tombstone, and deleting a session's items.

An erased session's tombstone is its session item, rewritten by the erasure to hold only its
keys, `vendor`, times and counts (`erased_at`, ...): the key names the session without holding
its id, and the session update's own condition (`attribute_not_exists(erased_at)`) refuses a
forgotten session, so the transaction needs no check of another item (DESIGN.md "Erasure").
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

from callvault import aws
from callvault.config import settings
from callvault.errors import StorageUnavailable
from callvault.store.table import _CONFLICT_RETRIES, Item, _call, _session_key

# Present on a session item only when it is a tombstone (callvault/erasure.py).
ERASED_ATTR = "erased_at"


def is_tombstone(item: Mapping[str, Any] | None) -> bool:
    """True when `item` (DynamoDB form) is an erased session's tombstone."""
    return item is not None and ERASED_ATTR in item


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
