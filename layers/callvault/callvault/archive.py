"""The S3 archive: raw bodies byte for byte, quarantined bodies, offloaded transcripts."""

from __future__ import annotations

import time
from datetime import datetime

from botocore.exceptions import BotoCoreError, ClientError

from callvault import aws
from callvault.config import settings
from callvault.errors import StorageUnavailable

# S3 answers 409 when two conditional writes of one key race; the loser retries and sees 412.
_CONFLICT_RETRIES = 4


def raw_key(vendor: str, webhook: str, event_id: str, received: datetime) -> str:
    return f"raw/{vendor}/{webhook}/{received:%Y/%m/%d}/{event_id}.json"


def quarantine_key(vendor: str, webhook: str, digest: str, received: datetime) -> str:
    return f"quarantine/{vendor}/{webhook}/{received:%Y/%m/%d}/{digest}.bin"


def transcript_key(vendor: str, session_id: str, event_id: str) -> str:
    return f"sessions/{vendor}/{session_id}/transcript/{event_id}.json"


def s3_uri(key: str) -> str:
    return f"s3://{settings().bucket_name}/{key}"


def put_once(key: str, body: bytes, content_type: str) -> bool:
    """Write `body` at `key` unless an object is already there.

    True when this call created it, False when it existed (a retry or a duplicate). Raises
    StorageUnavailable when S3 cannot be written.
    """
    for attempt in range(_CONFLICT_RETRIES + 1):
        try:
            aws.s3().put_object(Bucket=settings().bucket_name, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*")
            return True
        except ClientError as exc:
            code = aws.error_code(exc)
            if code in ("PreconditionFailed", "412"):
                return False
            if code in ("ConditionalRequestConflict", "409") and attempt < _CONFLICT_RETRIES:
                time.sleep(0.05 * 2**attempt)
                continue
            raise StorageUnavailable(f"s3 put failed: {code}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"s3 put failed: {type(exc).__name__}") from exc
    raise StorageUnavailable("s3 put kept conflicting")


def read(uri: str) -> bytes:
    """The object at an `s3://` URI of this archive. Raises StorageUnavailable when S3 cannot be read."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        return aws.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        raise StorageUnavailable(f"s3 get failed: {aws.error_code(exc)}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"s3 get failed: {type(exc).__name__}") from exc
