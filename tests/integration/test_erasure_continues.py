"""An erasure through the API that its time cuts short goes on by itself (issue 18, defect 4):
the tombstone says `erasing`, the erasure queue names the session, and the erase function,
invoked from that queue as Lambda's SQS event source invokes it, goes on until nothing is left."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from callvault import config, erasure, store
from callvault_local.apigw import LambdaContext, http_event
from callvault_local.functions import load_handler
from callvault_local.template import routes
from tests.conftest import Stored
from tests.integration.test_erasure import BYSTANDER, CALLER, VICTIM, deliver_call, traces

(ROUTE,) = [r for r in routes() if r.method == "DELETE"]


@pytest.fixture
def queue(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> str:
    """The erasure queue (the template's ErasureQueue), its URL in the function's environment."""
    url: str = boto3.client("sqs").create_queue(QueueName="ErasureQueue")["QueueUrl"]
    monkeypatch.setenv("ERASURE_QUEUE_URL", url)
    config.settings.cache_clear()
    return url


def _handler() -> Any:
    return load_handler(ROUTE.code_uri, ROUTE.handler, ROUTE.function)


def _delete(session_id: str, seconds_left: float) -> tuple[int, dict[str, Any]]:
    """DELETE as API Gateway invokes it, the invocation having `seconds_left`."""
    path = f"/sessions/cozmox/{session_id}"
    event = http_event(
        "DELETE",
        path,
        route_key=f"DELETE {ROUTE.path}",
        path_parameters={"vendor": "cozmox", "session_id": session_id},
    )
    event["requestContext"]["authorizer"] = {"iam": {"accessKey": "AKIA", "accountId": "123456789012", "userArn": CALLER}}
    result = _handler()(event, LambdaContext(ROUTE.function, timeout_ms=int(seconds_left * 1000)))
    return result["statusCode"], json.loads(result["body"])


def _deliver_queue(url: str, seconds_left: float) -> list[Any]:
    """What Lambda's SQS event source does once: receive, invoke with the records, delete those
    that did not fail. The messages delivered."""
    sqs = boto3.client("sqs")
    messages: list[Any] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"]).get("Messages", [])
    if not messages:
        return []
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ErasureQueue",
            "awsRegion": "us-east-1",
        }
        for m in messages
    ]
    reply = _handler()({"Records": records}, LambdaContext(ROUTE.function, timeout_ms=int(seconds_left * 1000)))
    failed = {f["itemIdentifier"] for f in reply["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def _tombstone(session_id: str) -> dict[str, Any]:
    found = store.tombstone("cozmox", session_id)
    assert found is not None
    return found


def test_an_erasure_cut_short_goes_on_from_the_queue_until_nothing_is_left(stored: Stored, queue: str) -> None:
    deliver_call(VICTIM)
    deliver_call(BYSTANDER)
    # The API's invocation has only its finish time left: the tombstone, then the queue.
    status, answer = _delete(VICTIM, erasure.FINISH_SECONDS)
    assert status == 200 and answer["status"] == "forgotten" and answer["complete"] is False
    assert _tombstone(VICTIM)[erasure.STATE_ATTR] == {"S": erasure.ERASING}
    assert traces(stored, VICTIM)  # not yet gone: the rest is queued

    # A run from the queue that is cut short too queues the rest again...
    assert len(_deliver_queue(queue, erasure.FINISH_SECONDS)) == 1
    assert _tombstone(VICTIM)[erasure.STATE_ATTR] == {"S": erasure.ERASING}
    # ...and one with time finishes it: nothing of the session is left, the tombstone says done.
    assert len(_deliver_queue(queue, 120)) == 1
    assert traces(stored, VICTIM) == []
    assert erasure.STATE_ATTR not in _tombstone(VICTIM)
    assert _deliver_queue(queue, 120) == []  # nothing more queued
    assert traces(stored, BYSTANDER)  # the other call untouched


def test_an_erasure_with_time_enough_finishes_in_the_api_and_queues_nothing(stored: Stored, queue: str) -> None:
    deliver_call(VICTIM)
    status, answer = _delete(VICTIM, 120)
    assert status == 200 and answer["complete"] is True
    assert traces(stored, VICTIM) == []
    assert erasure.STATE_ATTR not in _tombstone(VICTIM)
    assert _deliver_queue(queue, 120) == []
