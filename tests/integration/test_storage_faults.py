"""Storage failing: 503 so the vendor retries, never a half-written event, and a retry converges."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from callvault import aws
from tests.conftest import PAYLOADS, Stored, post_webhook

RAW = (PAYLOADS / "speaknode/conversation-complete.json").read_bytes()


@contextmanager
def failing(service: str, operation: str, error: Exception) -> Iterator[None]:
    client = getattr(aws, service)()
    with mock.patch.object(client, operation, side_effect=error):
        yield


def _client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)


@pytest.mark.parametrize(
    "error",
    [
        _client_error("InternalError", "PutObject"),
        _client_error("SlowDown", "PutObject"),
        EndpointConnectionError(endpoint_url="https://s3"),
    ],
)
def test_s3_down_is_503_and_writes_nothing(stored: Stored, error: Exception) -> None:
    with failing("s3", "put_object", error):
        response = post_webhook("speaknode", "conversation-complete", RAW)
    assert (response.status, response.json) == (503, {"error": "storage unavailable, retry later"})
    assert stored.keys() == [] and stored.items() == []
    assert post_webhook("speaknode", "conversation-complete", RAW).json["status"] == "stored"


@pytest.mark.parametrize(
    "error",
    [
        _client_error("ProvisionedThroughputExceededException", "TransactWriteItems"),
        _client_error("InternalServerError", "TransactWriteItems"),
        _client_error("AccessDeniedException", "TransactWriteItems"),
        EndpointConnectionError(endpoint_url="https://dynamodb"),
    ],
)
def test_dynamodb_down_is_503_and_a_retry_stores_once(stored: Stored, error: Exception) -> None:
    with failing("dynamodb", "transact_write_items", error):
        response = post_webhook("speaknode", "conversation-complete", RAW)
    assert response.status == 503
    assert stored.items() == []  # the raw body may be archived; nothing points at it yet
    retry = post_webhook("speaknode", "conversation-complete", RAW)
    assert retry.json["status"] == "stored"
    assert len(stored.keys("raw/")) == 1
    assert len(stored.events("speaknode", retry.json["session_id"])) == 1


def test_transaction_conflicts_are_retried(stored: Stored) -> None:
    conflict = ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
            "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
        },
        "TransactWriteItems",
    )
    client = aws.dynamodb()
    real = client.transact_write_items
    failures = iter([conflict, conflict])

    def flaky(**kwargs):
        error = next(failures, None)
        if error:
            raise error
        return real(**kwargs)

    with mock.patch.object(client, "transact_write_items", side_effect=flaky) as patched:
        response = post_webhook("speaknode", "conversation-complete", RAW)
    assert response.json["status"] == "stored"
    assert patched.call_count == 3


def test_quarantine_write_failing_is_503(stored: Stored) -> None:
    with failing("s3", "put_object", _client_error("InternalError", "PutObject")):
        response = post_webhook("speaknode", "conversation-complete", b"not json")
    assert response.status == 503
