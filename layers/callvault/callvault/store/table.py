"""The table every item is in: its keys, its items' form, its retention, and calling DynamoDB.

A session's items share one partition, `pk = "{vendor}#{digest}"`, the digest a SHA-256 of vendor
and session id (`session_digest`; the id itself is the attribute `session_id`): the session item
has `sk = "SESSION"`, each event `sk = "EVENT#{event_id}"`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from callvault import aws
from callvault.config import settings
from callvault.errors import StorageUnavailable

SESSION_SK = "SESSION"
EVENT_SK_PREFIX = "EVENT#"
_CONFLICT_RETRIES = 5
# DynamoDB TTL (template: the table's TimeToLiveSpecification): epoch seconds past which an item
# has outlived the retention set for it. TTL deletes lazily; readers treat a past value as gone.
EXPIRES_ATTR = "expires_at"


# Items come back (and go) in DynamoDB's attribute-value form.
Item = dict[str, Any]


def session_pk(vendor: str, session_id: str) -> str:
    """The partition of a session's items: the vendor (IAM's LeadingKeys are per vendor) and a
    digest of the id, so that the tombstone an erasure leaves there names no one."""
    return f"{vendor}#{session_digest(vendor, session_id)}"


def _session_key(vendor: str, session_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": session_pk(vendor, session_id)}, "sk": {"S": SESSION_SK}}


def session_digest(vendor: str, session_id: str) -> str:
    """A SHA-256 that names a session without holding its id (keys, tombstones, erasure logs)."""
    return hashlib.sha256(f"{vendor}\0{session_id}".encode()).hexdigest()


def _retention_expiry(received_at: str) -> dict[str, str] | None:
    """The TTL (epoch seconds) of an item written at `received_at`, or None when kept for ever."""
    days = settings().transcript_retention_days
    if not days:
        return None
    written = datetime.fromisoformat(received_at.replace("Z", "+00:00"))
    return {"N": str(int(written.timestamp()) + days * 86_400)}


def expired(item: Item, now: float) -> bool:
    """True when the item has outlived its retention (TTL may not have deleted it yet)."""
    expires = item.get(EXPIRES_ATTR, {}).get("N")
    return expires is not None and float(expires) <= now


def _call(operation: str, call: Any, **kwargs: Any) -> Any:
    """`call(**kwargs)`, DynamoDB's errors raised as StorageUnavailable (the error in `__cause__`)."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        raise StorageUnavailable(f"dynamodb {operation} failed: {aws.error_code(exc)}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"dynamodb {operation} failed: {type(exc).__name__}") from exc


def _conditional_update(operation: str, **kwargs: Any) -> dict[str, Any] | None:
    """An UpdateItem that may find its condition false (None), else DynamoDB's reply; StorageUnavailable on failure."""
    try:
        reply: dict[str, Any] = _call(operation, aws.dynamodb().update_item, TableName=settings().table_name, **kwargs)
        return reply
    except StorageUnavailable as exc:
        if aws.error_code(exc.__cause__) == "ConditionalCheckFailedException":
            return None
        raise
