"""`callvault replay`: file archived payloads again after a parser fix, idempotently.

Reads `raw/{vendor}/...` (and, with `quarantine`, `quarantine/{vendor}/...`) from the archive
bucket for a range of days and runs each body through the same parse-archive-store path as a
webhook (`callvault.ingest.replay`). A raw body keeps the event id it was archived under, so
what was stored before is answered `duplicate` and nothing is written twice; a quarantined body
that now parses is stored.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any


def replay(
    vendor: str,
    *,
    since: date | None = None,
    until: date | None = None,
    quarantine: bool = False,
    log: Callable[[str], None] = print,
) -> Counter[str]:
    """Replay `vendor`'s archived bodies received from `since` to `until` (days, inclusive):
    outcomes counted (stored, duplicate, ignored, quarantined)."""
    from callvault import archive, aws, ingest
    from callvault.config import settings

    adapter = importlib.import_module(f"callvault.vendors.{vendor}").ADAPTER
    bucket = settings().bucket_name
    outcomes: Counter[str] = Counter()
    prefixes = [f"raw/{vendor}/"] + ([f"quarantine/{vendor}/"] if quarantine else [])
    for prefix in prefixes:
        for page in aws.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for listed in page.get("Contents", []):
                key: str = listed["Key"]
                day = archive.day_of_key(key)
                if day is None or (since and day < since) or (until and day > until):
                    continue
                kind, _, webhook, *_, name = key.split("/")
                if webhook not in adapter.webhooks:
                    outcomes["skipped"] += 1
                    continue
                body: bytes = aws.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
                event_id = name.removesuffix(".json") if kind == "raw" else None
                outcome = ingest.replay(adapter, webhook, body, listed["LastModified"], event_id)
                outcomes[outcome] += 1
                if outcome == "stored":
                    log(f"stored {key}")
    return outcomes


def run(args: Any) -> int:
    """The CLI command: local stack by default, or the bucket and table given."""
    import os

    if args.bucket or args.table:
        if not (args.bucket and args.table):
            print("callvault replay: --bucket and --table go together (the stack's outputs)")
            return 2
        os.environ.update(BUCKET_NAME=args.bucket, TABLE_NAME=args.table)
    else:
        from callvault_local import dev

        dev.configure_environment(args.moto_port)
    since = date.fromisoformat(args.since) if args.since else None
    until = date.fromisoformat(args.until) if args.until else None
    outcomes = replay(args.vendor, since=since, until=until, quarantine=args.quarantine)
    print(", ".join(f"{name} {count}" for name, count in sorted(outcomes.items())) or "nothing to replay")
    return 0
