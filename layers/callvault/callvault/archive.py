"""The S3 archive: raw bodies byte for byte, quarantined bodies, recordings."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from callvault import aws
from callvault.config import settings
from callvault.errors import StorageUnavailable

# Recordings upload in parts of this size, a few in flight: memory stays flat whatever the file.
UPLOAD_PART_BYTES = 5 * 1024 * 1024  # S3's smallest part; 10,000 parts make 48 GiB, far above the size cap
UPLOAD_PARTS_IN_FLIGHT = 2
# S3 answers 409 when two conditional writes of one key race; the loser retries and sees 412.
_CONFLICT_RETRIES = 4


# The key segment of the bodies no session id could be read from (see `session_slot`).
NO_SESSION = "no-session"
# Parts of a raw or quarantine key: `kind/vendor/webhook/slot/yyyy/mm/dd/name`; before 0.3 there
# was no slot (`kind/vendor/webhook/yyyy/mm/dd/name`), and such keys are still read.
_KEY_PARTS, _LEGACY_KEY_PARTS = 8, 7


def session_slot(vendor: str, session_id: str | None) -> str:
    """The folder that holds one session's raw and quarantined bodies under each webhook's: 128
    bits of the SHA-256 the session's table key carries (`store.session_digest`), so that an
    erasure lists its bodies instead of reading the day's, and the key names no one."""
    if not session_id:
        return NO_SESSION
    return hashlib.sha256(f"{vendor}\0{session_id}".encode()).hexdigest()[:32]


def raw_key(vendor: str, webhook: str, event_id: str, received: datetime, session_id: str | None) -> str:
    day = f"{received.year:04d}/{received.month:02d}/{received.day:02d}"  # what `:%Y/%m/%d` makes, in a third of the time
    return f"raw/{vendor}/{webhook}/{session_slot(vendor, session_id)}/{day}/{event_id}.json"


def quarantine_key(vendor: str, webhook: str, digest: str, received: datetime, session_id: str | None) -> str:
    return f"quarantine/{vendor}/{webhook}/{session_slot(vendor, session_id)}/{received:%Y/%m/%d}/{digest}.bin"


def is_legacy_key(key: str) -> bool:
    """A raw or quarantine key of the layout before session slots (`kind/vendor/webhook/yyyy/mm/dd/name`)."""
    parts = key.split("/")
    return parts[0] in ("raw", "quarantine") and len(parts) == _LEGACY_KEY_PARTS


def day_of_key(key: str) -> date | None:
    """The receive day a raw or quarantine key carries, in either layout."""
    parts = key.split("/")
    year = {_KEY_PARTS: 4, _LEGACY_KEY_PARTS: 3}.get(len(parts))
    try:
        return date(int(parts[year]), int(parts[year + 1]), int(parts[year + 2])) if year else None
    except ValueError:
        return None


def s3_uri(key: str) -> str:
    return f"s3://{settings().bucket_name}/{key}"


def key_of(uri: str) -> str:
    """The object key of an `s3://` URI."""
    return uri.removeprefix("s3://").partition("/")[2]


def raw_key_webhook(key: str) -> str:
    """The webhook a raw body came in on, from its key (`raw_key`'s layout)."""
    return key.split("/")[2]


def put_once(key: str, body: bytes, content_type: str) -> str | None:
    """Write `body` at `key` unless an object is already there.

    The version this call created (`"null"` in an unversioned bucket), or None when the object
    existed (a retry or a duplicate). Raises StorageUnavailable when S3 cannot be written.
    """
    for attempt in range(_CONFLICT_RETRIES + 1):
        try:
            bucket = settings().bucket_name
            put = aws.s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*")
            return str(put.get("VersionId") or "null")
        except ClientError as exc:
            code = aws.error_code(exc)
            if code in ("PreconditionFailed", "412"):
                return None
            if code in ("ConditionalRequestConflict", "409") and attempt < _CONFLICT_RETRIES:
                time.sleep(0.05 * 2**attempt)
                continue
            raise StorageUnavailable(f"s3 put failed: {code}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"s3 put failed: {type(exc).__name__}") from exc
    raise StorageUnavailable("s3 put kept conflicting")


@contextmanager
def _s3_errors(operation: str) -> Iterator[None]:
    """S3's errors raised as StorageUnavailable; anything else (a failing upload body) as it is."""
    from boto3.exceptions import S3UploadFailedError

    try:
        yield
    except S3UploadFailedError as exc:  # boto3's upload wraps the ClientError of a part that failed
        raise StorageUnavailable(f"s3 {operation} failed: {aws.error_code(exc.__cause__)}") from exc
    except ClientError as exc:
        raise StorageUnavailable(f"s3 {operation} failed: {aws.error_code(exc)}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"s3 {operation} failed: {type(exc).__name__}") from exc


def read(uri: str) -> bytes:
    """The object at an `s3://` URI of this archive. Raises StorageUnavailable when S3 cannot be read."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    with _s3_errors("get"):
        body: bytes = aws.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def presigned_get(key: str, seconds: int) -> str:
    """A URL that reads the object at `key` of this archive for `seconds`, Range requests and all.
    Signing is local: no request is made; reading it needs the signer's s3:GetObject."""
    url: str = aws.s3_presigner().generate_presigned_url(
        "get_object", Params={"Bucket": settings().bucket_name, "Key": key}, ExpiresIn=seconds
    )
    return url


def own_key(uri: str) -> str | None:
    """The key of an `s3://` URI in this archive's bucket, else None."""
    prefix = f"s3://{settings().bucket_name}/"
    return uri.removeprefix(prefix) if uri.startswith(prefix) else None


@dataclass(frozen=True, slots=True)
class Version:
    """One object version or delete marker, as ListObjectVersions gives it."""

    key: str
    version_id: str
    is_marker: bool


def versions(prefix: str) -> Iterator[Version]:
    """Every version and delete marker of every key under `prefix`."""
    with _s3_errors("list versions"):
        pages = aws.s3().get_paginator("list_object_versions").paginate(Bucket=settings().bucket_name, Prefix=prefix)
        for page in pages:
            for version in page.get("Versions", []):
                yield Version(version["Key"], version["VersionId"], is_marker=False)
            for marker in page.get("DeleteMarkers", []):
                yield Version(marker["Key"], marker["VersionId"], is_marker=True)


def key_versions(key: str) -> list[Version]:
    """Every version and delete marker of exactly `key`."""
    return [version for version in versions(key) if version.key == key]


def folders(prefix: str) -> list[str]:
    """The "folders" right under `prefix` (keys up to the next `/`), from the version listing."""
    found: list[str] = []
    with _s3_errors("list versions"):
        pages = (
            aws.s3().get_paginator("list_object_versions").paginate(Bucket=settings().bucket_name, Prefix=prefix, Delimiter="/")
        )
        for page in pages:
            found += [common["Prefix"] for common in page.get("CommonPrefixes", [])]
    return found


def read_version(version: Version) -> bytes | None:
    """The bytes of one object version; None when it was deleted since it was listed."""
    try:
        with _s3_errors("get"):
            got = aws.s3().get_object(Bucket=settings().bucket_name, Key=version.key, VersionId=version.version_id)
            body: bytes = got["Body"].read()
    except StorageUnavailable as exc:
        if aws.error_code(exc.__cause__) in ("NoSuchVersion", "NoSuchKey"):
            return None
        raise
    return body


def delete_versions(doomed: list[Version]) -> None:
    """Delete these versions and markers for good (a versioned DeleteObjects, 1,000 to a request)."""
    for start in range(0, len(doomed), 1000):
        batch = [{"Key": v.key, "VersionId": v.version_id} for v in doomed[start : start + 1000]]
        with _s3_errors("delete"):
            reply = aws.s3().delete_objects(Bucket=settings().bucket_name, Delete={"Objects": batch, "Quiet": True})  # type: ignore[typeddict-item,unused-ignore]
        if reply.get("Errors"):
            first = reply["Errors"][0]
            raise StorageUnavailable(f"s3 delete failed: {first.get('Code')} ({len(reply['Errors'])} versions left)")


def recording_key(vendor: str, session_id: str, source_url: str, extension: str) -> str:
    """Where a session's recording lives: one object per source URL (a re-copy overwrites it)."""
    digest = hashlib.sha256(source_url.encode()).hexdigest()[:16]
    return f"audio/{vendor}/{session_id}/{digest}{extension}"


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    content_type: str | None
    metadata: dict[str, str]


def head(key: str) -> ObjectInfo | None:
    """What S3 knows of the object at `key` (None when there is none). Raises StorageUnavailable.

    The key's versions are listed first and only a key that is there is HEADed: S3 answers a HEAD
    of a missing key 403, not 404, to a caller without s3:ListBucket on the whole bucket, and the
    functions that call this may list only the versions under their own prefix."""
    with _s3_errors("head"):
        pages = aws.s3().get_paginator("list_object_versions").paginate(Bucket=settings().bucket_name, Prefix=key)
        latest = [
            kind
            for page in pages
            for kind, entries in (("version", page.get("Versions", [])), ("marker", page.get("DeleteMarkers", [])))
            for entry in entries
            if entry["Key"] == key and entry.get("IsLatest")
        ]
        if latest != ["version"]:  # never written, or deleted (a delete marker is the latest)
            return None
        reply = aws.s3().head_object(Bucket=settings().bucket_name, Key=key)
    return ObjectInfo(reply["ContentLength"], reply.get("ContentType"), dict(reply.get("Metadata") or {}))


def upload_stream(key: str, body: BinaryIO, content_type: str, metadata: dict[str, str] | None = None) -> None:
    """Stream `body` to `key` with a multipart upload: at most a few parts in memory at once,
    whatever the size; aborted (nothing left behind) when reading `body` fails.

    Errors from `body` propagate as they are; S3's own become StorageUnavailable.
    """
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(
        multipart_threshold=UPLOAD_PART_BYTES,
        multipart_chunksize=UPLOAD_PART_BYTES,
        max_concurrency=UPLOAD_PARTS_IN_FLIGHT,
        use_threads=True,
    )
    # s3transfer holds parts of a non-seekable stream in memory while they wait for an upload
    # thread (10 by default). One waiting part keeps both threads fed (bench.recordings: same
    # throughput as 2, 8 MB less peak RSS). boto3's constructor does not take this setting.
    config.max_in_memory_upload_chunks = 1
    with _s3_errors("upload"):
        extra = {"ContentType": content_type, "Metadata": metadata or {}}
        aws.s3().upload_fileobj(body, settings().bucket_name, key, ExtraArgs=extra, Config=config)
