"""Read API benchmark: items DynamoDB reads per page request as the table grows (moto).

    make bench      (or: uv run python -m bench.listing)

1,000 sessions are stored through the real webhook handlers; the table then grows to 5k, 10k and
50k sessions by copies of those items under new ids and times (the same shapes ingest writes).
For each size and filter it asks for one page of 20 and counts what DynamoDB reads to answer:
the index entries the Queries examine (ScannedCount) plus the items BatchGetItem returns, the
Queries made, and the read units billed (DynamoDB's rules, eventually consistent: a Query 0.5
per started 4 KB of what it read, at least 0.5; BatchGetItem 0.5 per item, each item's size
rounded up to 4 KB). A design that scans, or filters after reading, grows with the table; this
one should not. Wall time is moto's (its index queries scan in Python), shown for completeness only.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/callvault"), str(ROOT / "src")]

from callvault_local.offline import isolate  # noqa: E402

isolate("bench", POWERTOOLS_LOG_LEVEL="ERROR", CALLVAULT_SECRET_CURSOR="bench-cursor-key")

SIZES = (1_000, 5_000, 10_000, 50_000)
PAGE = 20
FILTERS: dict[str, dict[str, str]] = {
    "no filter": {},
    "vendor": {"vendor": "cozmox"},
    "status": {"status": "in_progress"},
    "vendor+status": {"vendor": "speaknode", "status": "ended"},
    "time range": {"created_after": "2026-01-01T02:00:00Z", "created_before": "2026-01-01T10:00:00Z"},
    "page 2 (cursor)": {},
}
BASE = datetime(2026, 1, 1, tzinfo=UTC)
PER_READ_UNIT = 0.125 / 1e6  # on-demand read request unit, us-east-1 (as bench/write_cost.py)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seed(count: int) -> list[dict[str, Any]]:
    """`count` sessions through the real handlers; returns their session items."""
    from callvault_local.dev import LocalApi
    from callvault_local.samples import VENDORS, session_webhook
    from callvault_local.template import routes

    api = LocalApi(routes())
    for vendor in VENDORS:
        os.environ[f"CALLVAULT_SECRET_{vendor.upper()}"] = f"bench-{vendor}"
    for n in range(count):
        vendor = VENDORS[n % len(VENDORS)]
        webhook = session_webhook(vendor, f"seed-{n:06d}", _iso(BASE + timedelta(minutes=n)), ended=n % 3 == 0)
        adapter = importlib.import_module(f"callvault.vendors.{vendor}").ADAPTER
        headers = {"content-type": "application/json", **adapter.sign(webhook.body, f"bench-{vendor}")}
        reply = api.handle("POST", f"/webhooks/{vendor}/{webhook.webhook}", headers, webhook.body, "127.0.0.1")
        assert reply.status == 200, reply
    client = _client()
    items = []
    for page in client.get_paginator("scan").paginate(TableName="callvault-sessions"):  # bench setup only
        items += [i for i in page["Items"] if i["sk"]["S"] == "SESSION"]
    return items


def _client() -> Any:
    from callvault import aws

    return aws.dynamodb()


def grow(seeds: list[dict[str, Any]], start: int, stop: int) -> None:
    """Copies of the seeded session items as sessions `start`..`stop`, one minute apart."""
    from callvault import store

    client = _client()
    batch: list[dict[str, Any]] = []
    for n in range(start, stop):
        item = json.loads(json.dumps(seeds[n % len(seeds)]))
        vendor = item["vendor"]["S"]
        session_id, created = f"copy-{n:06d}", _iso(BASE + timedelta(minutes=n))
        item.update(
            pk={"S": store.session_pk(vendor, session_id)},
            session_id={"S": session_id},
            created_at={"S": created},
            list_sk={"S": f"{created}#{vendor}#{session_id}"},
        )
        batch.append({"PutRequest": {"Item": item}})
        if len(batch) == 25:
            client.batch_write_item(RequestItems={"callvault-sessions": batch})
            batch = []
    if batch:
        client.batch_write_item(RequestItems={"callvault-sessions": batch})


@dataclass
class PageRead:
    """What one page request of the read API made DynamoDB read."""

    items_read: int
    items_returned: int
    seconds: float
    queries: int
    read_units: float


def page_reads(filters: dict[str, str], *, second_page: bool) -> PageRead:
    """What one page request of the read API read, and returned."""
    from bench.dynamodb_units import item_size, read_units
    from callvault import aws, sessions

    reads: Counter[str] = Counter()
    units = 0.0

    def count(parsed: Any, model: Any, **_: Any) -> None:
        nonlocal units
        if model.name == "Query":
            reads["query"] += parsed.get("ScannedCount", 0)
            reads["queries"] += 1
            units += read_units(sum(item_size(i) for i in parsed.get("Items", [])), consistent=False)
        elif model.name == "BatchGetItem":
            found = [i for rows in parsed.get("Responses", {}).values() for i in rows]
            reads["batch"] += len(found)
            units += sum(read_units(item_size(i), consistent=False) for i in found)

    client = aws.dynamodb()
    cursor = sessions.list_sessions(limit=PAGE, **filters).next_cursor if second_page else None
    client.meta.events.register("after-call.dynamodb", count)
    try:
        start = time.perf_counter()
        page = sessions.list_sessions(limit=PAGE, cursor=cursor, **filters)
        elapsed = time.perf_counter() - start
    finally:
        client.meta.events.unregister("after-call.dynamodb", count)
    return PageRead(reads["query"] + reads["batch"], len(page.items), elapsed, reads["queries"], units)


def main() -> None:
    import boto3
    from moto import mock_aws

    from callvault import aws
    from callvault_local import moto_patches, stack

    moto_patches.apply()
    results: dict[int, dict[str, PageRead]] = {}
    with mock_aws(), contextlib.redirect_stdout(io.StringIO()):
        aws.reset()
        stack.create(boto3.Session())
        seeds = seed(SIZES[0])
        size = SIZES[0]
        for target in SIZES:
            grow(seeds, size, target)
            size = target
            results[size] = {
                label: page_reads(filters, second_page=label.startswith("page 2")) for label, filters in FILTERS.items()
            }
        aws.reset()

    print(f"== Items DynamoDB reads per page request (limit {PAGE}): index entries examined + sessions fetched")
    header = f"{'filter':18s}" + "".join(f"{size:>10,d}" for size in SIZES) + "   growth 1k->50k"
    print(header)
    for label in FILTERS:
        reads = [results[size][label].items_read for size in SIZES]
        returned = [results[size][label].items_returned for size in SIZES]
        growth = reads[-1] / reads[0] if reads[0] else float("nan")
        print(f"{label:18s}" + "".join(f"{r:>10d}" for r in reads) + f"   {growth:.2f}x  (items returned: {returned})")
    print(f"\n== Read units (RCU) and Queries per page request (limit {PAGE}), ${PER_READ_UNIT * 1e6:.3f} per million RCU")
    print(f"{'filter':18s}" + "".join(f"{size:>14,d}" for size in SIZES) + "   $ per million pages (50k)")
    for label in FILTERS:
        row = [results[size][label] for size in SIZES]
        cells = "".join(f"{f'{r.read_units:.1f} ({r.queries} Q)':>14s}" for r in row)
        print(f"{label:18s}{cells}   {row[-1].read_units * PER_READ_UNIT * 1e6:.2f}")
    print("\n== Wall time per page request in moto, ms (moto scans its indexes in Python: not DynamoDB's cost)")
    for size in SIZES:
        times = [results[size][label].seconds * 1000 for label in FILTERS]
        print(f"{size:>7,d} sessions: median {statistics.median(times):.1f} ms")


if __name__ == "__main__":
    main()
