"""Every change of a session, from the table's stream (session items, and event items' inserts:
template.yaml), to each consumer: a change one of them could not handle is reported, and Lambda
retries the batch from it (consumers are idempotent), then sends it to the dead-letter queue."""

from __future__ import annotations

from typing import Any

from callvault import analytics, changes, outbound
from callvault.observability import logger

# Each consumer takes the batch's changes in order (callvault.changes.Consumer).
CONSUMERS: list[changes.Consumer] = [analytics.consume_changes, outbound.put_on_bus]
# Each event consumer takes the batch's stored events in order (callvault.changes.EventConsumer).
EVENT_CONSUMERS: list[changes.EventConsumer] = [analytics.consume_events]


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records", [])
    batch, stored = changes.from_records(records), changes.stored_events(records)
    failed = changes.first_unhandled(batch, CONSUMERS) if batch else None
    missed = [i for consume in EVENT_CONSUMERS if (i := consume(stored)) is not None] if stored else []
    checkpoint = changes.earliest(failed.sequence if failed else None, stored[min(missed)].sequence if missed else None)
    return {"batchItemFailures": [] if checkpoint is None else [{"itemIdentifier": checkpoint}]}
