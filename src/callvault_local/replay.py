"""`callvault replay`: file archived payloads again after a parser fix, idempotently.

Reads `raw/{vendor}/...` (and, with `quarantine`, `quarantine/{vendor}/...`) from the archive
bucket for a range of days and runs each body through the same parse-archive-store path as a
webhook (`callvault.ingest.replay`); the vendor API's answers reconcile archived under
`raw/{vendor}/pull/` go through the vendor's reconciler parse, as when they were pulled. A raw
body keeps the event id it was archived under, so what was stored before is answered
`duplicate` and nothing is written twice; a quarantined body that now parses is stored.
"""

from __future__ import annotations

import importlib
import io
from collections import Counter
from datetime import UTC, date, datetime, time
from typing import Any

from callvault_local.console import UserError, use_storage, vendor_name
from callvault_local.progress import Progress


def replay(
    vendor: str,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    quarantine: bool = False,
    progress: Progress | None = None,
) -> Counter[str]:
    """Replay `vendor`'s archived bodies received from `since` to `until`, both inclusive: a day
    (UTC) takes the whole day, a time takes bodies archived at or after it (`since`), at or
    before it (`until`). Outcomes counted (stored, duplicate, ignored, quarantined, forgotten,
    skipped), into `progress` as they come."""
    from callvault import archive, aws, ingest
    from callvault.config import settings

    adapter = importlib.import_module(f"callvault.vendors.{vendor}").ADAPTER
    bucket = settings().bucket_name
    progress = progress or Progress(f"replay {vendor}", stream=io.StringIO())
    prefixes = [f"raw/{vendor}/"] + ([f"quarantine/{vendor}/"] if quarantine else [])
    for prefix in prefixes:
        for page in aws.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for listed in page.get("Contents", []):
                key: str = listed["Key"]
                if not _within(archive.day_of_key(key), listed["LastModified"], since, until):
                    continue
                kind, _, webhook, *_, name = key.split("/")
                if not ingest.replayable(adapter, webhook):
                    progress.count("skipped")
                    continue
                body: bytes = aws.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
                event_id = name.removesuffix(".json") if kind == "raw" else None
                progress.count(ingest.replay(adapter, webhook, body, listed["LastModified"], event_id))
    return progress.counts


def _within(day: date | None, archived: datetime, since: date | datetime | None, until: date | datetime | None) -> bool:
    """Whether a body archived on `day` (its key's), at `archived` (its object's time), is in range."""
    if day is None:
        return False
    if since is not None and (day < _day(since) or (isinstance(since, datetime) and archived < since)):
        return False
    return until is None or not (day > _day(until) or (isinstance(until, datetime) and archived > until))


def _day(moment: date | datetime) -> date:
    return moment.date() if isinstance(moment, datetime) else moment


def _first_instant(moment: date | datetime) -> datetime:
    return moment if isinstance(moment, datetime) else datetime.combine(moment, time.min, UTC)


def _last_instant(moment: date | datetime) -> datetime:
    return moment if isinstance(moment, datetime) else datetime.combine(moment, time.max, UTC)


def moment(option: str, value: str | None) -> date | datetime | None:
    """`--since`/`--until`: a day (YYYY-MM-DD, UTC) or an ISO 8601 time (no zone: UTC); UserError otherwise."""
    if not value:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UserError(f"{option}: not a day or an ISO 8601 time, e.g. 2026-11-20 or 2026-11-20T09:15:00Z: {value!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def run(args: Any) -> int:
    """The CLI command: local stack by default, or the bucket and table given. The last line
    printed is the summary: `replay V: duplicate N, stored N, ...`."""
    vendor = vendor_name(args.vendor)
    since, until = moment("--since", args.since), moment("--until", args.until)
    if since and until and _first_instant(since) > _last_instant(until):
        raise UserError(f"--since {args.since} is after --until {args.until}")
    use_storage(args)
    progress = Progress(f"replay {vendor}")
    try:
        replay(vendor, since=since, until=until, quarantine=args.quarantine, progress=progress)
    finally:
        print(progress.finish())
    return 0
