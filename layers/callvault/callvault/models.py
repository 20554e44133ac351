"""The normalized session: one record per call, whatever the vendor (DESIGN.md contract)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal, Required

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, with_config
from typing_extensions import TypedDict

# How an event reached callvault: a vendor's webhook, or reconcile pulling the vendor's API.
EventSource = Literal["webhook", "pull"]


class Status(StrEnum):
    """A call's lifecycle; it only ever moves forward (by `rank`)."""

    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    ENDED = "ended"

    @property
    def rank(self) -> int:
        return _STATUS_RANK[self]


_STATUS_RANK = {Status.QUEUED: 1, Status.RINGING: 2, Status.IN_PROGRESS: 3, Status.ENDED: 4}


class Channel(StrEnum):
    INBOUND_PHONE = "inbound_phone"
    OUTBOUND_PHONE = "outbound_phone"
    WEB = "web"
    SMS = "sms"
    UNKNOWN = "unknown"


class RecordingState(StrEnum):
    PENDING = "pending"
    ARCHIVED = "archived"
    FAILED = "failed"
    NONE = "none"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Agent(_Model):
    id: str | None = None
    name: str | None = None


class Cost(_Model):
    total_usd: float | None = None
    breakdown: dict[str, Any] = Field(default_factory=dict)


class Recording(_Model):
    source_url: str | None = None
    expires_at: str | None = None
    state: RecordingState = RecordingState.NONE
    s3_uri: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    content_type: str | None = None
    archived_at: str | None = None
    error: str | None = (
        None  # why the copy failed (state failed), e.g. "expired: HTTP 403"; while pending, why the last attempt did
    )
    attempts: int | None = None  # copy attempts made; the copier stops at RECORDING_MAX_ATTEMPTS


# Transcript turns are typed dicts, not models: a long call has thousands, and validating them
# as dicts then serializing with pydantic-core costs a third of building models (bench/ingest.py).
# Stored JSON leaves out absent keys; the read API gives them back as null.
@with_config(ConfigDict(extra="forbid", allow_inf_nan=False))
class ToolCall(TypedDict, total=False):
    """A tool the agent called, and what came back."""

    name: str | None
    arguments: str | None
    output: str | None
    is_error: bool


@with_config(ConfigDict(extra="forbid", allow_inf_nan=False))
class TranscriptEntry(TypedDict, total=False):
    """One turn of the conversation."""

    role: Required[str]  # user | assistant | system | tool
    text: str | None
    at: str | None
    seconds: float | None  # offset from the start of the call (and its recording), as the vendor says it
    tool: ToolCall | None


class EventRef(_Model):
    event_id: str
    type: str
    received_at: str
    raw_s3_uri: str
    source: EventSource = "webhook"  # pull: filed by reconcile from the vendor's API


class CallMetrics(_Model):
    """What teams measure per call, where the vendor's payload says it; null where it does not.

    The fields a vendor's report sets (even to null) are the ones that vendor reports: a report
    missing one of them is partial (see `partial`)."""

    interruptions: int | None = Field(default=None, description="Times the caller cut the agent off mid-speech.")
    latency_p50_ms: float | None = Field(
        default=None, description="Median of the agent's response latency over the call's turns, in milliseconds."
    )
    latency_p90_ms: float | None = Field(default=None, description="90th percentile of the same, in milliseconds.")
    agent_talk_seconds: float | None = Field(default=None, description="Seconds the agent spoke.")
    customer_talk_seconds: float | None = Field(default=None, description="Seconds the caller spoke.")

    @property
    def partial(self) -> bool:
        """True when a metric its vendor reports is missing from this report: it fills what the
        session lacks but never replaces a fuller report (store.partial_documents)."""
        return any(getattr(self, name) is None for name in self.model_fields_set)


class SessionUpdate(_Model):
    """What one webhook event says about its session. `None` means "this event does not say"."""

    status: Status | None = None
    channel: Channel | None = None
    agent: Agent | None = None
    from_number: str | None = None
    to_number: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration_seconds: float | None = None
    ended_reason: str | None = None
    cost: Cost | None = None
    recording_url: str | None = None
    recording_expires_at: str | None = None
    # The event's transcript snapshot: its length always; its turns only when read back
    # (`with_transcript`), as the write stores the length and a pointer to the raw body, not the turns.
    transcript_turns: int | None = Field(default=None, ge=0)
    transcript: list[TranscriptEntry] | None = None
    summary: str | None = None
    metrics: CallMetrics | None = None
    vendor_fields: dict[str, Any] = Field(default_factory=dict)


@lru_cache(maxsize=1)
def _transcript_validator() -> TypeAdapter[list[TranscriptEntry]]:
    return TypeAdapter(list[TranscriptEntry])  # built on the first read: the webhook path never needs it


def with_transcript(update: SessionUpdate, entries: list[dict[str, Any]]) -> SessionUpdate:
    """`update` with its transcript, from an adapter's plain dicts (validated here, in one pass)."""
    return update.model_copy(update={"transcript": _transcript_validator().validate_python(entries)})


class SessionSummary(_Model):
    """A session as `GET /sessions` lists it: the normalized session but its transcript and events."""

    vendor: str
    session_id: str
    status: Status | None = None
    channel: Channel = Channel.UNKNOWN
    agent: Agent = Field(default_factory=Agent)
    from_number: str | None = None
    to_number: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration_seconds: float | None = None
    ended_reason: str | None = None
    cost: Cost | None = None
    recording: Recording = Field(default_factory=Recording)
    summary: str | None = None
    metrics: CallMetrics | None = None
    vendor_fields: dict[str, Any] = Field(default_factory=dict)


class ListedSession(SessionSummary):
    """One item of `GET /sessions`: the session's summary and the time the listing orders it by."""

    # DESIGN.md "Listing times": the vendor's creation time, else the call's start time, else when
    # callvault first heard of it; `created_after`/`created_before` filter on it too.
    listed_at: str | None = None


class Session(SessionSummary):
    """The normalized session as `GET /sessions/{vendor}/{session_id}` returns it (DESIGN.md contract)."""

    transcript: list[TranscriptEntry] = Field(default_factory=list)
    events: list[EventRef] = Field(default_factory=list)


def utc_iso(value: Any) -> str | None:
    """ISO 8601 UTC (`...Z`) from an ISO string or epoch seconds/milliseconds; None if unreadable."""
    kind = type(value)  # exact types: JSON gives int, float, str; bool is not a time
    if kind is float or kind is int:
        return _epoch_iso(value)
    if kind is not str or not value:
        return None
    text: str = value.strip()
    if len(text) == 24 and _WRITTEN_FORM.fullmatch(text):  # already in the one format callvault writes
        try:
            datetime.fromisoformat(text[:-1])  # a real day and time (not February 30th)
        except ValueError:
            return None
        return text
    if text.isascii() and text.isdigit():  # epoch as a string; not '²', which isdigit() also likes
        return _epoch_iso(int(text)) if len(text) <= 20 else None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # vendors that omit the zone mean UTC
        return format_utc(moment)
    except (ValueError, OverflowError):  # unreadable, or out of range once in UTC
        return None


# `format_utc`'s form: most vendors send their times in it, and it needs no formatting again.
_WRITTEN_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


def _epoch_iso(value: float) -> str | None:
    if value != value or value in (_INF, -_INF):
        return None
    millis = round(value if value <= -1e11 or value >= 1e11 else value * 1000)  # epoch ms vs s
    if not _EPOCH_MS_MIN <= millis <= _EPOCH_MS_MAX:
        return None  # outside years 1-9999: not a time anyone meant
    minutes, millis = divmod(millis, 60_000)
    seconds, millis = divmod(millis, 1000)
    return f"{_minute_prefix(minutes)}{seconds:02d}.{millis:03d}Z"


_EPOCH_MS_MIN, _EPOCH_MS_MAX = -62_135_596_800_000, 253_402_300_799_999
_INF = float("inf")


@lru_cache(maxsize=256)
def _minute_prefix(minutes: int) -> str:
    # A transcript's turns share a few minutes: formatting each minute once halves a report's cost.
    return time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minutes * 60))


def format_utc(moment: datetime) -> str:
    """The one time format callvault writes: millisecond precision, `Z` suffix."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def number(value: Any) -> float | None:
    """A finite JSON number, else None (exact types: JSON gives int, float; a boolean is not one)."""
    kind = type(value)
    return float(value) if (kind is int or kind is float) and -_INF < value < _INF else None


def offset_seconds(value: Any) -> float | None:
    """A turn's offset into the call as a vendor gives it (seconds): a finite number >= 0, else None."""
    seconds = number(value)
    return seconds if seconds is not None and seconds >= 0 else None


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from `start` to `end` (both from `utc_iso`); None when either is missing or end < start."""
    if not start or not end:
        return None
    delta = (_parse_utc(end) - _parse_utc(start)).total_seconds()
    return round(delta, 3) if delta >= 0 else None


def add_seconds(start: str | None, seconds: float | None) -> str | None:
    """`start` (from `utc_iso`) plus `seconds`; None when either is missing or seconds < 0."""
    if not start or seconds is None or seconds < 0:
        return None
    return format_utc(_parse_utc(start) + timedelta(seconds=seconds))
