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

The session's objects are found without listing the bucket: its raw bodies are the ones its
event items point at; its transcripts and recording live under its own `sessions/` and `audio/`
prefixes. Bodies nothing points at (an ignored event, a body archived whose DynamoDB write
failed, a quarantined body) are found by reading the raw and quarantined bodies of the days the
session was active (a day either side for deliveries around midnight), keeping those that name
the session id as a JSON string.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from callvault import archive, sessions, store
from callvault.models import format_utc
from callvault.observability import logger

# What the answer counts, by where the bytes were.
KINDS = ("items", "raw_bodies", "quarantined_bodies", "transcripts", "recordings", "analytics_rows")
_PARALLEL_READS = 8
_KIND_OF_PREFIX = {"raw": "raw_bodies", "quarantine": "quarantined_bodies", "sessions": "transcripts", "audio": "recordings"}


class Forgotten(BaseModel):
    """The answer to an erasure: the session is gone. `removed` counts what this run deleted
    (S3 object versions and delete markers, DynamoDB items): zero when run again."""

    status: Literal["forgotten"] = "forgotten"
    vendor: str
    session_id: str
    erased_at: str
    removed: dict[str, int]


@dataclass
class Erasure:
    """What one erasure removed: counts only."""

    vendor: str
    session_id: str
    erased_at: str
    removed: Counter[str] = field(default_factory=Counter)

    def counts(self) -> dict[str, int]:
        return {kind: self.removed[kind] for kind in KINDS}

    def answer(self) -> Forgotten:
        return Forgotten(vendor=self.vendor, session_id=self.session_id, erased_at=self.erased_at, removed=self.counts())


def _needles(session_id: str) -> tuple[bytes, ...]:
    """The session id as a JSON string, as a body would carry it (escaped or not)."""
    return tuple({json.dumps(session_id, ensure_ascii=flag).encode() for flag in (False, True)})


def _day(text: str | None) -> date | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).date() if text else None
    except ValueError:
        return None


class _Sweep:
    """One session's erasure in progress: what was looked at, what was removed."""

    def __init__(self, vendor: str, session_id: str, erasure: Erasure, session_item: store.Item | None) -> None:
        self.vendor, self.session_id, self.erasure = vendor, session_id, erasure
        self.session_item = session_item  # as it was before the tombstone replaced it
        self.needles = _needles(session_id)
        self.days: set[date] = set()
        self.examined: set[tuple[str, str]] = set()  # (key, version) read and found not to name the session

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
        doomed = list(self._day_versions(owned))
        for prefix in (f"sessions/{self.vendor}/{self.session_id}/", f"audio/{self.vendor}/{self.session_id}/"):
            doomed += archive.versions(prefix)
        for key in owned - {v.key for v in doomed}:  # pointed at, but outside the prefixes listed
            doomed += (v for v in archive.versions(key) if v.key == key)
        archive.delete_versions(doomed)
        for version in doomed:
            self.erasure.removed[_KIND_OF_PREFIX.get(version.key.split("/", 1)[0], "raw_bodies")] += 1
        store.delete_items(items)
        self.erasure.removed["items"] += len(items)

    def _day_versions(self, owned: set[str]) -> list[archive.Version]:
        """The versions under the active days' raw and quarantine prefixes that belong to the
        session: pointed at by its items, or naming its id."""
        days = sorted({d + timedelta(days=delta) for d in self.days for delta in (-1, 0, 1)})
        # Every webhook's folder, as stored (pulled bodies too, under raw/{vendor}/pull/).
        webhook_folders = [f for kind in ("raw", "quarantine") for f in archive.folders(f"{kind}/{self.vendor}/")]
        listed = [v for folder in webhook_folders for day in days for v in archive.versions(f"{folder}{day:%Y/%m/%d}/")]
        unread = [v for v in listed if v.key not in owned and not v.is_marker and (v.key, v.version_id) not in self.examined]
        # Reads overlap: on AWS a GET waits ~10-30 ms on the network, not on this function's CPU.
        with ThreadPoolExecutor(max_workers=_PARALLEL_READS) as pool:
            naming = dict(zip(unread, pool.map(self._names_session, unread), strict=True))
        named = {v.key for v in listed if v.key in owned or naming.get(v)}
        self.examined.update((v.key, v.version_id) for v, names in naming.items() if not names)
        return [v for v in listed if v.key in named]

    def _names_session(self, version: archive.Version) -> bool:
        body = archive.read_version(version)
        return body is not None and any(needle in body for needle in self.needles)


def erase(vendor: str, session_id: str, *, who: str) -> Erasure | None:
    """Remove every byte of one session and leave a tombstone that keeps it forgotten.

    None when there is no such session (nothing stored and no tombstone): nothing is written.
    Safe to run again: a session already forgotten is swept again (counts of what this run
    removed; usually zero). Raises StorageUnavailable when S3 or DynamoDB fail; running again
    finishes the job.
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
        store.put_tombstone(vendor, session_id, {store.ERASED_ATTR: erased_at})
        erasure.removed["items"] += session_item is not None  # replaced by the tombstone
    sweep = _Sweep(vendor, session_id, erasure, None if tombstone else session_item)
    sweep.run(now.date())
    sweep.run(now.date())  # what deliveries in flight before the tombstone wrote meanwhile
    erase_analytics(erasure, None if tombstone else session_item)
    # The tombstone keeps the totals of every run: what was removed, never what it was.
    totals = {kind: count + int((tombstone or {}).get(kind, {}).get("N", 0)) for kind, count in erasure.counts().items()}
    store.put_tombstone(
        vendor, session_id, {store.ERASED_ATTR: erased_at, "last_swept_at": format_utc(datetime.now(UTC)), **totals}
    )
    digest = store.session_digest(vendor, session_id)  # the log names the session as the tombstone does
    logger.info("session erased", vendor=vendor, session_digest=digest, who=who, erased_at=erased_at, removed=erasure.counts())
    return erasure


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
