"""Analytics dataset benchmark (docs/sql.md).

    make bench        (or: uv run python -m bench.analytics [--sessions 100000])

1. Write cost: batches of session changes and stored events, as the stream gives them, through the
   real consumers (callvault.analytics) into moto's S3: milliseconds per batch (the function's
   own time), files and bytes; dollars per million events at a few batch sizes (the stream's
   batching window fills a batch as fast as events arrive).
2. `callvault dev` in its own process holding N calls (4 versions and 4 events each, written by
   the real writer in batches of 1,000 changes): `callvault sql` (a process, as a user runs it)
   timing a group-by-vendor-and-day query as written, then again after the daily compaction
   (callvault.analytics.compact, as the deployed schedule would have run it over those days),
   each against the floor of `callvault sql "SELECT 1"` measured in the same run; dataset bytes
   per call; what an Athena query over a month of 1M calls scans, the whole month and one week
   read by its `day` (the partition), from the compacted files' real column sizes.
A webhook's 200 to its row in `sessions`: bench/sql_freshness.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/callvault"), str(ROOT / "src")]

from callvault_local.offline import isolate  # noqa: E402

isolate("bench", POWERTOOLS_LOG_LEVEL="ERROR")

from bench.write_cost import LAMBDA_MEMORY_GB, LAMBDA_PER_GB_SECOND, LAMBDA_PER_REQUEST, S3_PER_GB_MONTH, S3_PER_PUT  # noqa: E402
from callvault import analytics, store  # noqa: E402
from callvault.changes import SessionChange, StoredEvent  # noqa: E402

ATHENA_PER_TB = 5.0  # USD per TB scanned, 10 MB minimum per query
S3_PUT_MS = 25.0  # an assumed PutObject round trip from Lambda (as bench.write_cost)
VERSIONS_PER_CALL = 4  # started, in progress, ended, analyzed: a typical call's session writes
VENDORS = ("vapi", "retell", "elevenlabs", "cozmox", "voiceos", "speaknode", "agentsessions")
START = datetime(2026, 11, 1, tzinfo=UTC)


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def session_image(n: int, version: int) -> dict[str, Any]:
    """A session item as ingest writes it (DynamoDB form), at its `version`-th write."""
    vendor = VENDORS[n % len(VENDORS)]
    created = START + timedelta(seconds=n * 26)  # 100,000 calls over a month
    item: dict[str, Any] = {
        "pk": _s(store.session_pk(vendor, f"call-{n:08d}")),
        "sk": _s(store.SESSION_SK),
        "vendor": _s(vendor),
        "session_id": _s(f"call-{n:08d}"),
        "status": _s(["ringing", "in_progress", "ended", "ended"][version]),
        "channel": _s("inbound_phone"),
        "agent": _s(json.dumps({"id": f"agent-{n % 12}", "name": f"Front desk {n % 12}"})),
        "from_number": _s(f"+1555{n % 10_000_000:07d}"),
        "to_number": _s("+15550100000"),
        "created_at": _s(created.isoformat().replace("+00:00", "Z")),
        "started_at": _s(created.isoformat().replace("+00:00", "Z")),
        "list_sk": _s(f"{created.isoformat().replace('+00:00', 'Z')}#{vendor}#call-{n:08d}"),
        "updated_at": _s((created + timedelta(seconds=40 * version)).isoformat().replace("+00:00", "Z")),
        "event_count": {"N": str(version + 1)},
        "transcript_turns": {"N": str(6 * version)},
    }
    if version >= 2:
        duration = 30 + (n * 37) % 600
        item |= {
            "ended_at": _s((created + timedelta(seconds=duration)).isoformat().replace("+00:00", "Z")),
            "duration_seconds": {"N": str(duration)},
            "ended_reason": _s(["customer-ended-call", "assistant-ended-call", "silence-timed-out"][n % 3]),
            "cost": _s(json.dumps({"total_usd": round(duration * 0.0012, 4), "breakdown": {}})),
            "recording_state": _s("archived"),
        }
    if version == 3:
        item["summary"] = _s("The caller booked a table for four on Friday at 19:30 and asked about a vegan option. " * 3)
        item["vf:call_successful"] = _s("true")
        item["vf:user_sentiment"] = _s("Positive")
    return item


def changes_of(first: int, count: int, sequence: int) -> Iterator[SessionChange]:
    for offset in range(count):
        n, version = divmod(first + offset, VERSIONS_PER_CALL)
        yield SessionChange(f"e{sequence + offset}", str(sequence + offset), "MODIFY", None, session_image(n, version), "")


def events_of(first: int, count: int, sequence: int) -> Iterator[StoredEvent]:
    for offset in range(count):
        n, version = divmod(first + offset, VERSIONS_PER_CALL)
        image = session_image(n, version)
        item = {
            "event_id": _s(f"{n:08d}{version:02d}" + "0" * 54),
            "type": _s(["status-update", "status-update", "end-of-call-report", "call_analyzed"][version]),
            "received_at": image["updated_at"],
            "source": _s("webhook"),
            "webhook": _s("server-messages"),
        }
        yield StoredEvent(str(sequence + offset), image["pk"]["S"], item)


def write_month(sessions: int, batch: int) -> None:
    """`sessions` calls' versions and events, through the real writer, `batch` changes a file."""
    total = sessions * VERSIONS_PER_CALL
    for first in range(0, total, batch):
        count = min(batch, total - first)
        rows = [analytics.session_row(c) for c in changes_of(first, count, first)]
        analytics.write_rows(
            analytics.SESSION_VERSIONS,
            [{**r, analytics.DAY_COLUMN: r["listed_at"].date().isoformat()} for r in rows if r],
            f"{first:040d}-{first + count - 1:040d}",
        )
        ids = {e.session_pk: e.session_pk.split("#")[0] for e in events_of(first, count, first)}
        events = [
            analytics.event_row(e, f"call-{(first + i) // VERSIONS_PER_CALL:08d}")
            for i, e in enumerate(events_of(first, count, first))
        ]
        assert ids
        analytics.write_rows(
            analytics.EVENT_ROWS,
            [{**r, analytics.DAY_COLUMN: r["received_at"].date().isoformat()} for r in events],
            f"{first:040d}-{first + count - 1:040d}",
        )


def write_cost() -> dict[str, float]:
    """Milliseconds per 100-change batch through the consumers, and bytes written per call."""
    import boto3
    from moto import mock_aws

    from callvault import aws, config

    with mock_aws():
        aws.reset()
        config.settings.cache_clear()
        boto3.client("s3").create_bucket(Bucket="callvault-archive")
        boto3.client("dynamodb").create_table(
            TableName="callvault-sessions",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
        batches, size = 40, 100
        for n in range(batches * size // VERSIONS_PER_CALL):  # the sessions the events' GetItem finds
            boto3.client("dynamodb").put_item(TableName="callvault-sessions", Item=session_image(n, 0))
        analytics.consume_changes(list(changes_of(0, size, 0)))  # warm: DuckDB's import, the first connection
        started = time.perf_counter()
        for b in range(batches):
            changes = list(changes_of(b * size, size, b * size))
            events = list(events_of(b * size, size, b * size))
            assert analytics.consume_changes(changes) is None and analytics.consume_events(events) is None
        seconds = time.perf_counter() - started
        listed = boto3.client("s3").list_objects_v2(Bucket="callvault-archive", Prefix=analytics.PREFIX)["Contents"]
        written = sum(o["Size"] for o in listed)
        calls = batches * size / VERSIONS_PER_CALL
    aws.reset()
    return {"ms_per_batch": seconds * 1000 / batches, "files_per_batch": len(listed) / batches, "bytes_per_call": written / calls}


def dollars_per_million_events(ms_per_batch: float, files_per_batch: float, records_per_batch: int) -> float:
    """Each event is two stream records (its session's change and its event item's insert)."""
    invocations = 2e6 / records_per_batch
    scale = records_per_batch / 200  # the batch measured held 100 changes and 100 events
    seconds = invocations * (ms_per_batch * scale + S3_PUT_MS * files_per_batch) / 1000
    return invocations * (LAMBDA_PER_REQUEST + files_per_batch * S3_PER_PUT) + seconds * LAMBDA_MEMORY_GB * LAMBDA_PER_GB_SECOND


def _cli(*argv: str, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "callvault_local.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=100_000)
    args = parser.parse_args()

    cost = write_cost()
    print(f"consumers: {cost['ms_per_batch']:.1f} ms per batch of 100 changes + 100 events, {cost['files_per_batch']:.1f} files")
    print(f"dataset: {cost['bytes_per_call']:.0f} bytes per call as written (uncompacted batch files)")
    for records in (2, 20, 200, 1000):
        added = dollars_per_million_events(cost["ms_per_batch"], cost["files_per_batch"], records)
        print(f"  {records:>5} records a batch: +${added:.3f} per million events (+ storage)")
    storage = cost["bytes_per_call"] / 4 * S3_PER_GB_MONTH / 1e9 * 1e6  # a call is ~4 events
    print(f"  storage: +${storage:.4f} per million events per month kept")

    sys.path.insert(0, str(ROOT))
    from tests.e2e.conftest import started_stack

    with started_stack() as stack, tempfile.TemporaryDirectory() as folder:
        moto_port = stack.moto_url.rsplit(":", 1)[1]
        env = {**os.environ, "AWS_ENDPOINT_URL": stack.moto_url, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'layers/callvault'}"}
        import boto3

        from callvault import aws, config
        from callvault_local.stack import configure_environment

        configure_environment(int(moto_port))
        boto3.DEFAULT_SESSION = None  # made inside moto's mock above: a fresh one reads the endpoint
        aws.reset()
        config.settings.cache_clear()
        floor = min(_cli("sql", "SELECT 1 AS one", "--port", stack.url.rsplit(":", 1)[1], env=env)[0] for _ in range(3))

        started = time.perf_counter()
        write_month(args.sessions, 1000)
        print(
            f"wrote {args.sessions:,} calls ({args.sessions * VERSIONS_PER_CALL:,} versions and events) in {time.perf_counter() - started:.0f} s"
        )
        s3 = boto3.client("s3", endpoint_url=stack.moto_url)
        query = "SELECT vendor, day, count(*) AS calls, sum(cost_usd) AS cost_usd FROM sessions GROUP BY 1, 2 ORDER BY 2, 1"
        for state in ("as written", "compacted"):
            if state == "compacted":
                started = time.perf_counter()
                days = (_last_day(args.sessions) - START.date()).days + 1
                merged = analytics.compact(_last_day(args.sessions) + timedelta(days=2), days=days)
                print(
                    f"compaction of {days} days: {sum(merged.values()):,} files merged in {time.perf_counter() - started:.0f} s"
                )
            files = _files(s3)
            for run in ("first query (the stack copies the files)", "again (its copy up to date)"):
                seconds, out = _cli("sql", query, "--port", stack.url.rsplit(":", 1)[1], "--format", "csv", env=env)
                print(
                    f"`callvault sql` group by vendor and day over {args.sessions:,} calls, {state}"
                    f" ({len(files[analytics.SESSION_VERSIONS])} session_versions files), {run}: {seconds:.2f} s"
                    f" (floor `SELECT 1`: {floor:.2f} s, x{seconds / floor:.1f}); {len(out.splitlines()) - 1} rows"
                )
        athena(s3, _files(s3), args.sessions, Path(folder))


def _last_day(sessions: int) -> date:
    return (START + timedelta(seconds=(sessions - 1) * 26)).date()


def _files(s3: Any) -> dict[str, dict[str, int]]:
    """The dataset's files (key: size), by table."""
    found: dict[str, dict[str, int]] = {table: {} for table in analytics.TABLES}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="callvault-archive", Prefix=analytics.PREFIX):
        for entry in page.get("Contents", []):
            found[entry["Key"].split("/")[1]][entry["Key"]] = entry["Size"]
    return found


def athena(s3: Any, files: dict[str, dict[str, int]], sessions: int, folder: Path) -> None:
    """What Athena scans for the group-by over a month of 1M calls: the compressed bytes of the
    columns it reads (the view's window reads vendor, session_id and version; the query cost_usd),
    in the days it reads, from the compacted files' own column sizes, scaled from `sessions`."""
    import duckdb

    used = ("vendor", "session_id", "version", "cost_usd")
    by_day: dict[str, int] = {}
    whole = 0
    for key in files[analytics.SESSION_VERSIONS]:
        path = folder / "column-sizes.parquet"
        path.write_bytes(s3.get_object(Bucket="callvault-archive", Key=key)["Body"].read())
        sizes = dict(
            duckdb.execute(
                f"SELECT path_in_schema, sum(total_compressed_size) FROM parquet_metadata('{path}') GROUP BY 1"
            ).fetchall()
        )
        day = key.split(f"{analytics.DAY_COLUMN}=", 1)[1].split("/", 1)[0]
        by_day[day] = by_day.get(day, 0) + sum(sizes[c] for c in used)
        whole += sum(sizes.values())
    scale = 1_000_000 / sessions
    per_call = sum(files[analytics.SESSION_VERSIONS].values()) / sessions
    print(
        f"dataset bytes per call (compacted): {per_call:.0f} in session_versions,"
        f" {sum(files[analytics.EVENT_ROWS].values()) / sessions:.0f} in event_rows"
    )
    month, read = whole * scale, sum(by_day.values()) * scale
    last_week = sorted(by_day)[-7:]
    week = sum(by_day[d] for d in last_week) * scale
    print(f"Athena, a month of 1M calls ({len(by_day)} days): session_versions {month / 1e9:.3f} GB")
    for what, scanned in (
        ("the whole month, every column (a scan with no pruning and no column pruning)", month),
        ("the whole month, its columns only", read),
        (f"`WHERE day >= '{last_week[0]}'` (7 days pruned by partition), its columns only", week),
    ):
        dollars = max(scanned, 10e6) / 1e12 * ATHENA_PER_TB  # 10 MB minimum per query
        print(f"  group-by reading {what}: {scanned / 1e6:.1f} MB, ${dollars:.5f} a query")


if __name__ == "__main__":
    main()
