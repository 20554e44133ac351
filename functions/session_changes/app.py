"""Every change of a session, from the table's stream (session items only, template.yaml), to
each consumer: a change one of them could not handle is reported, and Lambda retries the
batch from it (consumers are idempotent), then sends it to the dead-letter queue."""

from __future__ import annotations

from typing import Any

from callvault import changes, outbound
from callvault.observability import logger

# Each consumer takes the batch's changes in order (callvault.changes.Consumer).
CONSUMERS: list[changes.Consumer] = [outbound.put_on_bus]


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    batch = changes.from_records(event.get("Records", []))
    failed = changes.first_unhandled(batch, CONSUMERS) if batch else None
    return {"batchItemFailures": [] if failed is None else [{"itemIdentifier": failed.sequence}]}
