"""Erasing one session everywhere (DESIGN.md "Erasure"): items, raw bodies, transcripts, recording.

Order matters, so that deliveries racing the erasure leave nothing behind:
1. the tombstone is written first, in place of the session item (read just before, for the raw
   bodies and days it names): from then on no transaction files an event for the session (the
   session update's condition refuses a tombstone), and an ignored event, audio in a body or a
   body that cannot be filed but names the session are not kept (ingest looks first, and takes
   back what a delivery in flight wrote when its transaction, or a second look, finds the tombstone);
2. every S3 version the session owns is deleted, then its event items (they index the raw keys,
   so they go last: an erasure that fails half way finds them again when run again);
3. a second sweep deletes what deliveries in flight before the tombstone wrote meanwhile.

The session's objects are found without reading anyone else's: every raw and quarantined body
that names the session is kept under its own folder of each webhook's (`archive.session_slot`),
and its transcripts and recording under its own `sessions/` and `audio/` prefixes, so an erasure
lists those and its requests grow with the session's own objects, not with the other calls of its
days. Two kinds of bodies are still found by reading: those no session id could be read from
(`no-session/`: not JSON, or an event without an id), of the days the session was active (a day
either side for deliveries around midnight), kept when they name the session id as a JSON string;
and, for a session filed before the slots (0.2 and earlier, its items point at keys without one),
the bodies of the old layout of its days, read the same way.

An erasure given a deadline stops at it between requests, leaves the tombstone marked
`erasure_state: erasing` with what it removed so far, and says it is not complete: erasing again
(the API function does so by itself, through its queue) goes on from what is left.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal, Protocol

from pydantic import BaseModel

from callvault import archive, aws, sessions, store
from callvault.config import settings
from callvault.errors import StorageUnavailable
from callvault.models import format_utc
from callvault.observability import logger

# What the answer counts, by where the bytes were.
KINDS = ("items", "raw_bodies", "quarantined_bodies", "transcripts", "recordings", "analytics_rows")
_PARALLEL_READS = 8
_KIND_OF_PREFIX = {"raw": "raw_bodies", "quarantine": "quarantined_bodies", "sessions": "transcripts", "audio": "recordings"}


class Forgotten(BaseModel):
    """The answer to an erasure: the session is gone. `removed` counts what this run deleted
    (S3 object versions and delete markers, DynamoDB items): zero when run again. `complete`
    false: the run stopped at its deadline, the rest goes on (the API: by itself; `forget`: run again)."""

    status: Literal["forgotten"] = "forgotten"
    vendor: str
    session_id: str
    erased_at: str
    removed: dict[str, int]
    complete: bool = True


@dataclass
class Erasure:
    """What one erasure removed: counts only."""

    vendor: str
    session_id: str
    erased_at: str
    removed: Counter[str] = field(default_factory=Counter)
    complete: bool = True

    def counts(self) -> dict[str, int]:
        return {kind: self.removed[kind] for kind in KINDS}

    def answer(self) -> Forgotten:
        return Forgotten(
            vendor=self.vendor,
            session_id=self.session_id,
            erased_at=self.erased_at,
            removed=self.counts(),
            complete=self.complete,
        )


class _OutOfTime(Exception):
    """The deadline came: the tombstone says so, and a later run goes on."""


def _needles(session_id: str) -> tuple[bytes, ...]:
    """The session id as a JSON string, as a body would carry it (escaped or not)."""
    return tuple({json.dumps(session_id, ensure_ascii=flag).encode() for flag in (False, True)})


def _day(text: str | None) -> date | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).date() if text else None
    except ValueError:
        return None


# Deletes go in batches this size, the deadline looked at between them.
_DELETE_BATCH = 1000


class _Sweep:
    """One session's erasure in progress: what was looked at, what was removed."""

    def __init__(
        self, vendor: str, session_id: str, erasure: Erasure, session_item: store.Item | None, deadline: float | None = None
    ) -> None:
        self.vendor, self.session_id, self.erasure = vendor, session_id, erasure
        self.session_item = session_item  # as it was before the tombstone replaced it
        self.deadline = deadline  # time.monotonic() past which the sweep stops between requests
        self.needles = _needles(session_id)
        self.days: set[date] = set()
        self.examined: set[tuple[str, str]] = set()  # (key, version) read and found not to name the session

    def _in_time(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _OutOfTime

    def run(self, today: date) -> None:
        # The tombstone stays; the event items go (the session item's references are events' bodies too).
        items = [i for i in store.session_items(self.vendor, self.session_id, consistent=True) if not store.is_tombstone(i)]
        owned: set[str] = set()
        for item in [*items, *([self.session_item] if self.session_item else [])]:
            for name, value in item.items():
                text = value.get("S")
                if name in ("received_at", "first_seen_at", "updated_at", "created_at"):  # first_seen_at: older items
                    found = _day(text)
                    if found:
                        self.days.add(found)
                elif isinstance(text, str) and (key := archive.own_key(text)) is not None:
                    owned.add(key)
                    if found := archive.day_of_key(key):
                        self.days.add(found)
        self.days.add(today)
        webhook_folders = [f for kind in ("raw", "quarantine") for f in archive.folders(f"{kind}/{self.vendor}/")]
        slot = archive.session_slot(self.vendor, self.session_id)
        doomed = [v for folder in webhook_folders for v in archive.versions(f"{folder}{slot}/")]
        self._in_time()
        doomed += self._unattributed(webhook_folders, legacy=any(archive.is_legacy_key(key) for key in owned))
        for prefix in (f"sessions/{self.vendor}/{self.session_id}/", f"audio/{self.vendor}/{self.session_id}/"):
            doomed += archive.versions(prefix)
        # Pointed at, in the old layout (every other key is under a prefix listed above).
        for key in {key for key in owned if archive.is_legacy_key(key)} - {v.key for v in doomed}:
            self._in_time()
            doomed += archive.key_versions(key)
        for start in range(0, len(doomed), _DELETE_BATCH):
            self._in_time()
            batch = doomed[start : start + _DELETE_BATCH]
            archive.delete_versions(batch)
            for version in batch:
                self.erasure.removed[_KIND_OF_PREFIX.get(version.key.split("/", 1)[0], "raw_bodies")] += 1
        # Items last: they point at the old layout's bodies, so a run cut short finds those again.
        for start in range(0, len(items), _DELETE_BATCH):
            self._in_time()
            store.delete_items(items[start : start + _DELETE_BATCH])
            self.erasure.removed["items"] += len(items[start : start + _DELETE_BATCH])

    def _unattributed(self, webhook_folders: list[str], *, legacy: bool) -> list[archive.Version]:
        """The versions of the active days' bodies kept under no session's folder that name the
        session: those no session id was read from, and with `legacy` the old layout's."""
        days = sorted({d + timedelta(days=delta) for d in self.days for delta in (-1, 0, 1)})
        folders = [f"{folder}{archive.NO_SESSION}/" for folder in webhook_folders] + (webhook_folders if legacy else [])
        listed = [v for folder in folders for day in days for v in archive.versions(f"{folder}{day:%Y/%m/%d}/")]
        unread = [v for v in listed if not v.is_marker and (v.key, v.version_id) not in self.examined]
        # Reads overlap: on AWS a GET waits ~10-30 ms on the network, not on this function's CPU.
        with ThreadPoolExecutor(max_workers=_PARALLEL_READS) as pool:
            naming = dict(zip(unread, pool.map(self._names_session, unread), strict=True))
        named = {v.key for v in listed if naming.get(v)}
        self.examined.update((v.key, v.version_id) for v, names in naming.items() if not names)
        return [v for v in listed if v.key in named]

    def _names_session(self, version: archive.Version) -> bool:
        self._in_time()
        body = archive.read_version(version)
        return body is not None and any(needle in body for needle in self.needles)


# What the tombstone says of an erasure that has not finished yet (a run stopped at its deadline).
STATE_ATTR, ERASING = "erasure_state", "erasing"


def erase(vendor: str, session_id: str, *, who: str, deadline: float | None = None) -> Erasure | None:
    """Remove every byte of one session and leave a tombstone that keeps it forgotten.

    None when there is no such session (nothing stored and no tombstone): nothing is written.
    Safe to run again: a session already forgotten is swept again (counts of what this run
    removed; usually zero). With a `deadline` (`time.monotonic()`), the run stops at it between
    requests: the answer is not `complete`, the tombstone says `erasing`, and running again goes
    on. Raises StorageUnavailable when S3 or DynamoDB fail; running again finishes the job.
    """
    sessions.check_session(vendor, session_id)
    now = datetime.now(UTC)
    items = store.session_items(vendor, session_id, consistent=True)
    if not items:
        return None
    session_item = next((i for i in items if i["sk"]["S"] == store.SESSION_SK), None)
    tombstone = session_item if store.is_tombstone(session_item) else None
    erased_at = tombstone[store.ERASED_ATTR]["S"] if tombstone else format_utc(now)
    erasure = Erasure(vendor, session_id, erased_at)
    if tombstone is None:
        store.put_tombstone(vendor, session_id, {store.ERASED_ATTR: erased_at, STATE_ATTR: ERASING})
        erasure.removed["items"] += session_item is not None  # replaced by the tombstone
    # First, while the item as it was is in hand: a run cut short would not have it again.
    erase_analytics(erasure, None if tombstone else session_item)
    sweep = _Sweep(vendor, session_id, erasure, None if tombstone else session_item, deadline)
    try:
        sweep.run(now.date())
        sweep.run(now.date())  # what deliveries in flight before the tombstone wrote meanwhile
    except _OutOfTime:
        erasure.complete = False
    # The tombstone keeps the totals of every run: what was removed, never what it was.
    totals = {kind: count + int((tombstone or {}).get(kind, {}).get("N", 0)) for kind, count in erasure.counts().items()}
    state = {} if erasure.complete else {STATE_ATTR: ERASING}
    swept = format_utc(datetime.now(UTC))
    store.put_tombstone(vendor, session_id, {store.ERASED_ATTR: erased_at, "last_swept_at": swept, **state, **totals})
    digest = store.session_digest(vendor, session_id)  # the log names the session as the tombstone does
    logger.info(
        "session erased" if erasure.complete else "session erasure continues",
        vendor=vendor,
        session_digest=digest,
        who=who,
        erased_at=erased_at,
        removed=erasure.counts(),
    )
    return erasure


# The API's share of an erasure: API Gateway answers 503 after 30 s; the rest goes on from the queue.
API_SECONDS = 20.0
# Kept back from an invocation's time for what follows the deadline: the tombstone, the queue's message.
FINISH_SECONDS = 5.0


class HasRemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


def api_seconds(context: HasRemainingTime) -> float | None:
    """How long the API's run may take: None when there is no queue to go on from (locally,
    where nothing cuts a run short), so it runs to the end."""
    if not settings().erasure_queue_url:
        return None
    return max(0.0, min(API_SECONDS, context.get_remaining_time_in_millis() / 1000 - FINISH_SECONDS))


def queue_seconds(context: HasRemainingTime) -> float:
    """How long a run from the queue may take: what its invocation has left, less the finish."""
    return max(0.0, context.get_remaining_time_in_millis() / 1000 - FINISH_SECONDS)


def erase_for_a_while(vendor: str, session_id: str, *, who: str, seconds: float | None) -> Erasure | None:
    """`erase` within `seconds` (None: to the end); when that was not enough, a message on the
    erasure queue names the session, and the function invoked from it goes on (`continue_queued`).
    Raises StorageUnavailable (the queue included)."""
    done = erase(vendor, session_id, who=who, deadline=None if seconds is None else time.monotonic() + seconds)
    if done is not None and not done.complete:
        message = json.dumps({"vendor": vendor, "session_id": session_id, "who": who})
        try:
            aws.sqs().send_message(QueueUrl=settings().erasure_queue_url, MessageBody=message)
        except Exception as exc:  # botocore's errors, or no queue configured
            raise StorageUnavailable(f"sqs send failed: {aws.error_code(exc) or type(exc).__name__}") from exc
    return done


def continue_queued(message: dict[str, str], *, seconds: float) -> None:
    """Go on with an erasure the queue names (the session's tombstone says `erasing`)."""
    erase_for_a_while(message["vendor"], message["session_id"], who=message["who"], seconds=seconds)


# ---------------------------------------------------------------- analytics step
# The session's rows in the analytics dataset (callvault/analytics.py): the files of the days its
# item (as it was before the tombstone) names are rewritten without them. The session-changes
# function does the same when the tombstone's change reaches it (a batch in flight meanwhile),
# so a later run, which no longer has the item, has nothing to find.


def erase_analytics(erasure: Erasure, session_item: store.Item | None) -> None:
    """Remove the session's analytics rows, counted as `analytics_rows`."""
    if session_item is None:
        return
    from callvault import analytics

    days = analytics.session_days(session_item)
    erasure.removed["analytics_rows"] += analytics.erase_session(erasure.vendor, erasure.session_id, days)
