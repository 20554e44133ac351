"""Copying a session's recording into the archive before its link expires (DESIGN.md "Recordings").

One copy per recording, however many events carry its URL: the copier first claims the session's
recording with a conditional update (state pending, same URL, no live claim); only the claimant
downloads, and only its claim may write the result. The body streams from the vendor into an S3
multipart upload through a reader that hashes, counts and enforces the size cap, so memory stays
flat whatever the size.
"""

from __future__ import annotations

import base64
import hashlib
import io
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from callvault import archive, store, vendors
from callvault.config import settings
from callvault.download import DownloadError, Opened, open_url
from callvault.errors import StorageUnavailable
from callvault.models import Recording, RecordingState, format_utc, utc_iso
from callvault.observability import count_with, logger
from callvault.vendors.base import EmbeddedRecording

UPLOAD_READ_BYTES = 1024 * 1024
# A copy ends this long before its invocation does (a tenth of what is left, for a short one): time
# for a read that was waiting when the deadline came (10 s at most), the upload's completion and
# the outcome's write. Its claim lasts until the invocation ends: a copy cut short by a timeout or
# a crash leaves no claim that outlives it, so Lambda's retry finds the recording free.
FINISH_SECONDS = 30.0
# Fewer seconds left than this (a quarter of the invocation, or half the copy's own bound, when
# shorter): not started, retried.
MIN_COPY_SECONDS = 20.0
# A claim found live is looked at again this often while waiting for it to lapse.
_CLAIM_POLL_SECONDS = 5.0
_CLAIM_TRIES = 100  # bounds the loop; time runs out first (a wait of 5 s each)
_AUDIO_TYPES = ("audio/", "video/")  # video/mp4 and video/webm carry audio-only files too
_GENERIC_TYPES = frozenset({"application/octet-stream", "binary/octet-stream", "application/ogg", ""})
_EXTENSIONS = {
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/ogg": ".ogg",
    "application/ogg": ".ogg",
    "audio/flac": ".flac",
    "audio/mp4": ".m4a",
    "audio/webm": ".webm",
}

Outcome = Literal["archived", "failed", "skipped", "retry"]


@dataclass(frozen=True)
class RecordingJob:
    """A session whose recording is pending, as the stream shows it."""

    vendor: str
    session_id: str
    source_url: str
    expires_at: str | None


class TooLarge(Exception):
    pass


def sniff_audio(head: bytes) -> str | None:
    """The audio type the first bytes of a file announce, if any (for servers that say octet-stream)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head[:4] == b"OggS":
        return "audio/ogg"
    if head[:4] == b"fLaC":
        return "audio/flac"
    if head[4:8] == b"ftyp":
        return "audio/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "audio/webm"
    return None


class _Tee(io.RawIOBase):
    """The response body as a file for S3's multipart upload: hashed, counted, capped, timed."""

    def __init__(self, head: bytes, opened: Opened, cap: int, deadline: float) -> None:
        self._head, self._opened, self._cap, self._deadline = head, opened, cap, deadline
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if time.monotonic() > self._deadline:
            raise DownloadError("timed out while copying", permanent=False)
        if self._head:
            data, self._head = self._head[: len(buffer)], self._head[len(buffer) :]
        else:
            data = self._opened.read_some(len(buffer))
        self.size += len(data)
        if self.size > self._cap:
            raise TooLarge
        self.sha256.update(data)
        buffer[: len(data)] = data
        return len(data)


def _content_type(opened: Opened, head: bytes) -> str | None:
    if opened.content_type.startswith(_AUDIO_TYPES):
        return opened.content_type
    if opened.content_type in _GENERIC_TYPES:
        return sniff_audio(head)
    return None


def _expired(job: RecordingJob, now: datetime) -> bool:
    expires = utc_iso(job.expires_at)
    return expires is not None and expires <= format_utc(now)


def copy_recording(job: RecordingJob, seconds_left: float | None = None) -> Outcome:
    """Copy `job`'s recording once, within `seconds_left` (what the invocation has left; None: no
    invocation to outlive, the configured bound). "retry" when it is left pending for a later
    attempt (the caller reports the record as failed so Lambda retries it with backoff, then
    dead-letters it): a transient failure, too little time left, or another claim still live.

    Attempts are counted on the session: the one that reaches `recording_max_attempts` and still
    fails transiently marks the recording failed ("gave up after N attempts: HTTP 503"), so an
    unreachable host is fetched a bounded number of times and the session says so."""
    config = settings()
    started = time.monotonic()
    if seconds_left is None:  # no invocation to outlive (a tool, a test): the configured bound
        seconds_left = config.recording_timeout_seconds + FINISH_SECONDS
    # The copy's deadline, on the monotonic clock; the claim lasts until the invocation ends.
    end = started + min(config.recording_timeout_seconds, seconds_left - min(FINISH_SECONDS, seconds_left / 10))
    least = min(MIN_COPY_SECONDS, seconds_left / 4, config.recording_timeout_seconds / 2)
    claim = uuid.uuid4().hex
    for _ in range(_CLAIM_TRIES):
        now = datetime.now(UTC)
        if end - time.monotonic() < least:
            logger.info("recording copy left for a later attempt: too little time left")
            return "retry"
        claimed = store.claim_recording(job.vendor, job.session_id, claim, now, started + seconds_left - time.monotonic())
        if claimed is not None:
            break
        # Lost: done (archived, failed, erased), or a claim still live. A live one lapses by the
        # time its invocation ends: wait for it while there is time, else leave it to a retry.
        pending, until = store.recording_claim(job.vendor, job.session_id)
        if not pending:
            return "skipped"
        wait = (datetime.fromisoformat(until.replace("Z", "+00:00")) - datetime.now(UTC)).total_seconds() if until else 0.0
        if time.monotonic() + wait > end - least:
            logger.info("recording claimed by another attempt; retried later", claimed_until=until)
            return "retry"
        time.sleep(max(0.0, min(wait, _CLAIM_POLL_SECONDS)) + 0.05)
    else:
        return "retry"
    job = replace(job, source_url=claimed.source_url, expires_at=claimed.expires_at)
    if claimed.attempt > config.recording_max_attempts:
        # Delivered again after the last attempt ended without an outcome (a timeout, a crash).
        attempts = claimed.attempt - 1
        return _fail(job, claim, _gave_up(attempts, claimed.last_error or "no outcome recorded"), attempts)
    try:
        result = _download_and_store(job, claim, end)
    except DownloadError as exc:
        if not exc.permanent:
            if claimed.attempt >= config.recording_max_attempts:
                return _fail(job, claim, _gave_up(claimed.attempt, exc.reason))
            logger.warning("recording copy will be retried", reason=exc.reason, attempt=claimed.attempt)
            store.release_recording(job.vendor, job.session_id, claim, exc.reason)
            return "retry"
        reason = f"expired: {exc.reason}" if _expired(job, now) and exc.status in (401, 403, 404, 410) else exc.reason
        return _fail(job, claim, reason)
    except TooLarge:
        return _fail(job, claim, f"too large: over {config.recording_max_bytes} bytes")
    except StorageUnavailable as exc:
        store.release_recording(job.vendor, job.session_id, claim, str(exc))
        raise
    return result


def _gave_up(attempts: int, reason: str) -> str:
    return f"gave up after {attempts} attempts: {reason}"


def _fail(job: RecordingJob, claim: str, reason: str, attempts: int | None = None) -> Outcome:
    # `attempts` only when the attempt that found the bound spent fetched nothing (not counted)
    outcome = Recording(state=RecordingState.FAILED, error=reason, attempts=attempts)
    store.finish_recording(job.vendor, job.session_id, claim, outcome)
    count_with("RecordingsFailed", vendor=job.vendor)  # the reason is on the session and in the log line
    if reason.startswith("expired"):
        count_with("RecordingLinksExpired", vendor=job.vendor)
    # vendor and session named on the line itself: a local run copies in several threads at once (one logger)
    logger.warning("recording not copied", reason=reason, vendor=job.vendor, session_id=job.session_id)
    return "failed"


def _download_and_store(job: RecordingJob, claim: str, deadline: float) -> Outcome:
    config = settings()
    # The vendor says how its link is fetched (Vapi's private storage wants its API key); the
    # archive key and the session keep the link itself.
    fetch = vendors.adapter(job.vendor).recording_fetch(job.session_id, job.source_url)
    try:
        opened = open_url(fetch.url, deadline=deadline, allow_loopback=config.recording_allow_loopback, headers=fetch.headers)
    except DownloadError as exc:
        if fetch.headers and exc.status in (401, 403):  # the session says why: a key revoked or wrong
            raise DownloadError(f"{exc.reason}: the {job.vendor} API refused the key", permanent=True, status=exc.status) from exc
        raise
    try:
        if opened.content_length is not None and opened.content_length > config.recording_max_bytes:
            raise TooLarge
        head = opened.read_head(64)
        content_type = _content_type(opened, head)
        if content_type is None:
            raise DownloadError(f"not audio: {opened.content_type or 'no content type'}", permanent=True)
        key = archive.recording_key(job.vendor, job.session_id, job.source_url, _EXTENSIONS.get(content_type, ""))
        body = _Tee(head, opened, config.recording_max_bytes, deadline)
        archive.upload_stream(key, io.BufferedReader(body, buffer_size=UPLOAD_READ_BYTES), content_type)
    finally:
        opened.close()
    finished = store.finish_recording(
        job.vendor, job.session_id, claim, archived(key, body.size, body.sha256.hexdigest(), content_type)
    )
    if not finished and store.tombstone(job.vendor, job.session_id) is not None:
        # Erased while this copy ran: the erasure could not see an upload not yet complete.
        archive.delete_versions(archive.key_versions(key))
        logger.info("recording of a forgotten session removed")
        return "skipped"
    count_with("RecordingsArchived", vendor=job.vendor)
    logger.info("recording archived", bytes=body.size, key=key)
    return "archived"


def archived(key: str, size: int, sha256: str, content_type: str) -> Recording:
    """A recording now in the archive at `key`, however it got there (copied from a link, or
    carried in the webhook body): the fields the session records of it."""
    return Recording(
        state=RecordingState.ARCHIVED,
        s3_uri=archive.s3_uri(key),
        bytes=size,
        sha256=sha256,
        content_type=content_type,
        archived_at=format_utc(datetime.now(UTC)),
    )


class _Base64Audio(io.RawIOBase):
    """Base64 text read as the bytes it encodes, a chunk at a time: the decoded file is never
    whole in memory. The text must be valid base64 (the adapter checked it)."""

    _CHUNK_CHARS = 1024 * 1024  # a multiple of 4: every chunk decodes on its own

    def __init__(self, text: str) -> None:
        self._text, self._position, self._pending = text, 0, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending and self._position < len(self._text):
            chunk = self._text[self._position : self._position + self._CHUNK_CHARS]
            self._position += len(chunk)
            self._pending = base64.b64decode(chunk)
        data, self._pending = self._pending[: len(buffer)], self._pending[len(buffer) :]
        buffer[: len(data)] = data
        return len(data)


def store_embedded(vendor: str, session_id: str, event_id: str, recording: EmbeddedRecording) -> Recording:
    """Store a recording that came in the webhook body at `audio/{vendor}/{session_id}/...` and
    return it as the session records it (`archived`). Idempotent: a retried event finds the file
    already there and reuses what was recorded of it, uploading nothing again.

    One pass hashes and sizes the decoded audio, a second streams it to S3 with those facts in the
    object's metadata; each holds one chunk at a time. Raises StorageUnavailable."""
    content_type = sniff_audio(base64.b64decode(recording.base64_text[:88])) or recording.content_type
    key = archive.recording_key(vendor, session_id, f"event:{event_id}", _EXTENSIONS.get(content_type, ""))
    existing = archive.head(key)
    if existing is not None and "sha256" in existing.metadata:
        return archived(key, existing.size, existing.metadata["sha256"], existing.content_type or content_type)
    digest, size, reader = hashlib.sha256(), 0, _Base64Audio(recording.base64_text)
    while chunk := reader.read(UPLOAD_READ_BYTES):
        digest.update(chunk)
        size += len(chunk)
    stream = io.BufferedReader(_Base64Audio(recording.base64_text), buffer_size=UPLOAD_READ_BYTES)
    archive.upload_stream(key, stream, content_type, metadata={"sha256": digest.hexdigest()})
    count_with("RecordingsArchived", vendor=vendor)
    logger.info("recording stored from the webhook body", bytes=size, key=key)
    return archived(key, size, digest.hexdigest(), content_type)


# Longer than a webhook function's timeout (template: 15 s): a delivery that died holding the
# claim lets the next one (the vendor's retry) or a copier have it soon after.
EMBEDDED_CLAIM_SECONDS = 60


def store_embedded_once(
    vendor: str, session_id: str, event_id: str, recording: EmbeddedRecording
) -> Literal["stored", "had", "forgotten"]:
    """Make the audio an event carried in its body the session's recording, unless the session
    already has one or a copier is fetching it (`store.claim_embedded_recording`): the claim comes
    before the upload, so the loser uploads nothing. "stored"; "had" when another was had first
    (this audio stays in the event's raw body); "forgotten" when the session was erased meanwhile
    (the audio taken back). Raises StorageUnavailable, the claim released with the reason."""
    claim = uuid.uuid4().hex
    if not store.claim_embedded_recording(vendor, session_id, claim, datetime.now(UTC), EMBEDDED_CLAIM_SECONDS):
        if store.recording_of(vendor, session_id) is None:
            return "forgotten"
        logger.info("audio in the body not stored: the session's recording was had first")
        return "had"
    try:
        stored = store_embedded(vendor, session_id, event_id, recording)
        finished = store.finish_recording(vendor, session_id, claim, stored)
    except StorageUnavailable as exc:
        store.release_recording(vendor, session_id, claim, str(exc))
        raise
    if not finished:
        # Erased while it uploaded (a tombstone holds no claim), or the claim outlived: take the
        # audio back unless it is, after all, what the session points at (a retry of this event).
        current = store.recording_of(vendor, session_id)
        if current is None or current.s3_uri != stored.s3_uri:
            key = archive.own_key(str(stored.s3_uri))
            archive.delete_versions(archive.key_versions(key) if key else [])
        if current is None:
            return "forgotten"
        logger.info("audio in the body not stored: the claim was lost while it uploaded")
        return "had"
    return "stored"


def job_from_image(image: dict[str, Any]) -> RecordingJob | None:
    """The job a stream record's new image describes, or None when it is not a pending recording."""
    if image.get("sk", {}).get("S") != store.SESSION_SK or image.get("recording_state", {}).get("S") != "pending":
        return None
    url = image.get("recording_source_url", {}).get("S")
    vendor, session_id = image.get("vendor", {}).get("S"), image.get("session_id", {}).get("S")
    if not (url and vendor and session_id):
        return None
    return RecordingJob(vendor, session_id, url, image.get("recording_expires_at", {}).get("S"))
