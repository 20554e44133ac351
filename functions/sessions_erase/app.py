"""DELETE /sessions/{vendor}/{session_id}: erase one session everywhere (IAM-authorized in AWS).

An erasure that does not finish within the API's time goes on by itself: the tombstone says
`erasing`, a message on the erasure queue names the session, and this function, invoked from
that queue, erases again until nothing is left (each run within its own time)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from callvault import erasure
from callvault.api import SessionNotFound, resolver
from callvault.observability import logger

app = resolver()
processor = BatchProcessor(event_type=EventType.SQS)


def _caller() -> str:
    """Who asked: the IAM principal API Gateway authorized (logged with the erasure)."""
    iam = app.current_event.request_context.authorizer.iam
    return (iam.user_arn if iam else None) or "unknown"


@app.delete("/sessions/<vendor>/<session_id>", summary="Erase one session everywhere; a tombstone keeps it forgotten")
def erase_session(
    vendor: Annotated[str, Path(description="The vendor")],
    session_id: Annotated[str, Path(description="The vendor's session id")],
) -> erasure.Forgotten:
    # API Gateway waits 30 s at most: what is not done by then goes on from the queue.
    done = erasure.erase_for_a_while(vendor, session_id, who=_caller(), seconds=erasure.api_seconds(app.lambda_context))
    if done is None:
        raise SessionNotFound(f"no session {session_id!r} for {vendor}")
    return done.answer()


def continue_erasure(record: SQSRecord) -> None:
    """One queued erasure, run again within this invocation's time (and queued again if that
    was not enough); an error leaves the message to SQS's redelivery, then its dead-letter queue."""
    erasure.continue_queued(record.json_body, seconds=erasure.queue_seconds(processor.lambda_context))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "Records" in event:  # the erasure queue
        return dict(process_partial_response(event=event, record_handler=continue_erasure, processor=processor, context=context))
    return app.resolve(event, context)
