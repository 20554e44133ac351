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
from datetime import date
from typing import Any

from callvault_local.console import UserError, use_storage, vendor_name
from callvault_local.progress import Progress


def replay(
    vendor: str,
    *,
    since: date | None = None,
    until: date | None = None,
    quarantine: bool = False,
    progress: Progress | None = None,
) -> Counter[str]:
    """Replay `vendor`'s archived bodies received from `since` to `until` (days, inclusive):
    outcomes counted (stored, duplicate, ignored, quarantined, forgotten, skipped), into `progress` as they come."""
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
                day = archive.day_of_key(key)
                if day is None or (since and day < since) or (until and day > until):
                    continue
                kind, _, webhook, *_, name = key.split("/")
                if not ingest.replayable(adapter, webhook):
                    progress.count("skipped")
                    continue
                body: bytes = aws.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
                event_id = name.removesuffix(".json") if kind == "raw" else None
                progress.count(ingest.replay(adapter, webhook, body, listed["LastModified"], event_id))
    return progress.counts


def _date(option: str, value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise UserError(f"{option}: not a day, e.g. 2026-11-20 (YYYY-MM-DD): {value!r}") from None


def run(args: Any) -> int:
    """The CLI command: local stack by default, or the bucket and table given. The last line
    printed is the summary: `replay V: duplicate N, stored N, ...`."""
    vendor = vendor_name(args.vendor)
    since, until = _date("--since", args.since), _date("--until", args.until)
    if since and until and since > until:
        raise UserError(f"--since {since} is after --until {until}")
    use_storage(args)
    progress = Progress(f"replay {vendor}")
    try:
        replay(vendor, since=since, until=until, quarantine=args.quarantine, progress=progress)
    finally:
        print(progress.finish())
    return 0
