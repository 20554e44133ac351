"""Reconcile's watermark: one item per vendor, the end of its last complete pass (callvault/reconcile.py)."""

from __future__ import annotations

from callvault import aws
from callvault.config import settings
from callvault.store.table import _call, _conditional_update

WATERMARK_SK = "WATERMARK"


def watermark_pk(vendor: str) -> str:
    return f"reconcile#{vendor}"


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
