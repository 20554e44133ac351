"""boto3 clients, made once per container on first use.

Made lazily so that importing a handler stays cheap, and with short timeouts because a vendor
waits on the answer (cozmox gives up after 20 s by default). `AWS_ENDPOINT_URL` is honoured by
boto3 itself, which is how the local stack points every function at moto.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client


@cache
def _config() -> Any:
    from botocore.config import Config

    return Config(connect_timeout=2, read_timeout=8, retries={"mode": "standard", "max_attempts": 3})


@cache
def s3() -> S3Client:
    import boto3

    return boto3.client("s3", config=_config())


@cache
def s3_presigner() -> S3Client:
    """An S3 client for presigned URLs: SigV4 (the only signature S3 takes in every region)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=_config().merge(Config(signature_version="s3v4")))


@cache
def dynamodb() -> DynamoDBClient:
    import boto3

    return boto3.client("dynamodb", config=_config())


@cache
def events() -> Any:
    """EventBridge (events out: callvault.outbound)."""
    import boto3

    return boto3.client("events", config=_config())


@cache
def sqs() -> Any:
    """SQS (the outbound webhooks' queue: callvault.notify)."""
    import boto3

    return boto3.client("sqs", config=_config())


def reset() -> None:
    """Forget the clients (tests switch endpoints and credentials between cases)."""
    s3.cache_clear()
    s3_presigner.cache_clear()
    dynamodb.cache_clear()
    events.cache_clear()
    sqs.cache_clear()
    _config.cache_clear()


def error_code(exc: BaseException | None) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None
