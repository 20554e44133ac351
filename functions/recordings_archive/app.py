"""Copies each pending recording into the archive; triggered by the sessions table's stream,
filtered to session items whose recording is pending (template.yaml)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from callvault import recordings
from callvault.observability import logger

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


class CopyLater(Exception):
    """A transient failure, too little time left, or a claim still live: reported as this
    record's failure (never as done), so Lambda retries it and, once its retries are spent, sends
    it to the dead-letter queue."""


def record_handler(record: DynamoDBRecord, lambda_context: LambdaContext) -> str:
    job = recordings.job_from_image(record.raw_event.get("dynamodb", {}).get("NewImage") or {})
    if job is None:
        return "skipped"
    logger.append_keys(vendor=job.vendor, session_id=job.session_id)
    # Bounded by what this invocation has left: a copy cut short by the timeout would leave its
    # claim to outlive it, and the retry would find the recording taken.
    outcome = recordings.copy_recording(job, lambda_context.get_remaining_time_in_millis() / 1000)
    if outcome == "retry":
        raise CopyLater(f"{job.vendor}#{job.session_id}")
    return outcome


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
