"""The analytics dataset (DESIGN.md "SQL over calls"): Parquet files in the archive bucket that
Athena (the deployed stack) and DuckDB (`callvault sql`) both query, the same files in the same layout.

- `analytics/session_versions/day=YYYY-MM-DD/{first}-{last}.parquet`: one row per version of a
  session (each change of a live session's item); the `sessions` view keeps each call's latest.
- `analytics/event_rows/day=YYYY-MM-DD/{first}-{last}.parquet`: one row per stored event; the
  `events` view keeps one row per event id.

Written by the session-changes function's consumers, one file per day per batch, named by the
batch's first and last stream sequence numbers: a batch retried whole overwrites its files, and a
retried tail writes rows the views already drop as repeats. The day is the call's listing day
(DESIGN.md "Listing times") at that version. An erasure rewrites the session's days' files
without its rows (`erase_session`); the consumer does it again when the tombstone's change
reaches it, so a batch in flight during the erasure cannot bring a row back.

DuckDB writes and rewrites the files: it lives in a layer of its own (layers/analytics), imported
only here, only when a file is written, so the webhook functions never load it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from callvault import archive, aws, store
from callvault.changes import SessionChange, StoredEvent
from callvault.config import settings
from callvault.errors import StorageUnavailable
from callvault.models import CallMetrics
from callvault.observability import logger

PREFIX = "analytics/"
SESSION_VERSIONS = "session_versions"
EVENT_ROWS = "event_rows"
DAY_COLUMN = "day"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    sql: str  # DuckDB's type
    glue: str  # the Glue (Hive) type of the same Parquet column
    presto: str  # the type the Athena view reports


def _col(name: str, kind: str) -> Column:
    sql, glue, presto = {
        "text": ("VARCHAR", "string", "varchar"),
        "time": ("TIMESTAMP", "timestamp", "timestamp(3)"),
        "real": ("DOUBLE", "double", "double"),
        "count": ("BIGINT", "bigint", "bigint"),
        "flag": ("BOOLEAN", "boolean", "boolean"),
    }[kind]
    return Column(name, sql, glue, presto)


# models.CallMetrics' fields, each a column of its own name: the interruptions a count, the rest real.
METRIC_COLUMNS = tuple(CallMetrics.model_fields)
_COUNTED_METRICS = frozenset({"interruptions"})
# The contract's `sessions` columns, then what teams measure where the vendor says it, then the
# version's own bookkeeping (which change it was).
SESSION_COLUMNS: tuple[Column, ...] = (
    *(
        _col(n, "text")
        for n in ("vendor", "session_id", "status", "channel", "agent_id", "agent_name", "from_number", "to_number")
    ),
    *(_col(n, "time") for n in ("created_at", "started_at", "ended_at")),
    _col("duration_seconds", "real"),
    _col("ended_reason", "text"),
    _col("cost_usd", "real"),
    _col("recording_state", "text"),
    _col("turns", "count"),
    _col("summary", "text"),
    _col("analysis_success", "flag"),
    _col("sentiment", "text"),
    *(_col(n, "count" if n in _COUNTED_METRICS else "real") for n in METRIC_COLUMNS),
    _col("event_count", "count"),
    _col("listed_at", "time"),
    _col("updated_at", "time"),
    _col("version", "text"),
)
# The partition (the folder `day=YYYY-MM-DD`): a column of each view, so that a query's `WHERE day
# >= ...` prunes the days Athena reads. A session's versions are all in one day (its listing day:
# `consume_changes` moves them when it changes), so the views' windows partition by it too: Athena
# pushes a filter through a window only on the window's partition columns.
DAY = Column(DAY_COLUMN, "VARCHAR", "string", "varchar")
# What a `sessions` row shows: a version's columns but its bookkeeping; an `events` row, the event's but its route.
SESSION_VIEW_COLUMNS = (*(c for c in SESSION_COLUMNS if c.name != "version"), DAY)
EVENT_COLUMNS: tuple[Column, ...] = (
    *(_col(n, "text") for n in ("vendor", "session_id", "event_id", "type")),
    _col("received_at", "time"),
    _col("source", "text"),
    _col("webhook", "text"),
)
EVENT_VIEW_COLUMNS = (*(c for c in EVENT_COLUMNS if c.name != "webhook"), DAY)
TABLES: dict[str, tuple[Column, ...]] = {SESSION_VERSIONS: SESSION_COLUMNS, EVENT_ROWS: EVENT_COLUMNS}
VIEW_COLUMNS: dict[str, tuple[Column, ...]] = {"sessions": SESSION_VIEW_COLUMNS, "events": EVENT_VIEW_COLUMNS}

# The views, in Athena's dialect (Trino); `callvault sql` runs the same text on DuckDB.
SESSIONS_VIEW_SQL = (
    f"SELECT {', '.join(c.name for c in SESSION_VIEW_COLUMNS)} FROM ("  # noqa: S608 - our own column names  # nosec B608
    f"SELECT *, row_number() OVER (PARTITION BY vendor, session_id, {DAY_COLUMN} ORDER BY version DESC) AS latest"
    f" FROM {SESSION_VERSIONS}) WHERE latest = 1"
)
EVENTS_VIEW_SQL = (
    f"SELECT {', '.join(c.name for c in EVENT_VIEW_COLUMNS)} FROM ("  # noqa: S608 - our own column names  # nosec B608
    f"SELECT *, row_number() OVER (PARTITION BY vendor, event_id, {DAY_COLUMN} ORDER BY received_at) AS first FROM {EVENT_ROWS})"
    " WHERE first = 1"
)
VIEWS = {"sessions": SESSIONS_VIEW_SQL, "events": EVENTS_VIEW_SQL}


def table_prefix(table: str) -> str:
    return f"{PREFIX}{table}/"


def day_prefix(table: str, day: str) -> str:
    return f"{table_prefix(table)}{DAY_COLUMN}={day}/"


# Rows from items (DynamoDB form).


def _text(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name, {}).get("S")  # a reference (a map) to a value past its inline bound: not inline, null
    return str(value) if value is not None else None


def _number(item: Mapping[str, Any], name: str) -> float | None:
    value = item.get(name, {}).get("N")
    return float(value) if value is not None else None


def _document(item: Mapping[str, Any], name: str) -> dict[str, Any]:
    text = _text(item, name)
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _vendor_field(item: Mapping[str, Any], name: str) -> Any:
    text = _text(item, store.VENDOR_FIELD_PREFIX + name)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _time(text: str | None) -> datetime | None:
    """An ISO 8601 time as a naive UTC datetime (Parquet's timestamp), None when unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment.astimezone(UTC) if moment.tzinfo else moment).replace(tzinfo=None)


def _success(item: Mapping[str, Any]) -> bool | None:
    """The vendor's analysis verdict: Retell `call_successful` (a boolean), ElevenLabs
    `call_successful` ("success"/"failure"/"unknown"), Vapi `success_evaluation` (true/false, or
    a rubric's words: only a boolean or "true"/"false" counts)."""
    for name in ("call_successful", "success_evaluation"):
        value = _vendor_field(item, name)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("success", "true", "failure", "false"):
            return value.lower() in ("success", "true")
    return None


def _metric(metrics: Mapping[str, Any], name: str) -> float | int | None:
    value = metrics.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):  # absent: the vendor does not say
        return None
    return int(value) if name in _COUNTED_METRICS else float(value)


def listed_at(item: Mapping[str, Any]) -> str | None:
    """The time the session is listed by (the `list_sk` prefix: DESIGN.md "Listing times")."""
    key = _text(item, store.LIST_SK_ATTR)
    return key.split("#", 1)[0] if key else None


def session_row(change: SessionChange) -> dict[str, Any] | None:
    """The row of a session's version, or None when the change leaves no live session (a
    tombstone, a deletion by retention)."""
    item = change.new
    if item is None or store.is_tombstone(item) or "session_id" not in item:
        return None
    agent, cost, metrics = _document(item, "agent"), _document(item, "cost"), _document(item, store.METRICS_ATTR)
    sentiment = _vendor_field(item, "user_sentiment")
    turns = item.get(store.TRANSCRIPT_TURNS_ATTR, {}).get("N")
    return {
        **{name: _text(item, name) for name in ("vendor", "session_id", "status", "channel", "from_number", "to_number")},
        "agent_id": agent.get("id"),
        "agent_name": agent.get("name"),
        **{name: _time(_text(item, name)) for name in ("created_at", "started_at", "ended_at")},
        "duration_seconds": _number(item, "duration_seconds"),
        "ended_reason": _text(item, "ended_reason"),
        "cost_usd": float(cost["total_usd"]) if isinstance(cost.get("total_usd"), int | float) else None,
        "recording_state": _text(item, store.recording_attr("state")) or "none",
        "turns": int(turns) if turns is not None else 0,
        "summary": _text(item, "summary"),
        "analysis_success": _success(item),
        "sentiment": sentiment if isinstance(sentiment, str) else None,
        **{name: _metric(metrics, name) for name in METRIC_COLUMNS},
        "event_count": int(_number(item, "event_count") or 0),
        "listed_at": _time(listed_at(item)),
        "updated_at": _time(_text(item, "updated_at")),
        # Stream sequence numbers grow with each write of an item: the latest version sorts last.
        "version": change.sequence.zfill(40),
    }


def event_row(event: StoredEvent, session_id: str) -> dict[str, Any]:
    item = event.item
    return {
        "vendor": event.session_pk.split("#", 1)[0],
        "session_id": session_id,
        "event_id": _text(item, "event_id"),
        "type": _text(item, "type"),
        "received_at": _time(_text(item, "received_at")),
        "source": _text(item, "source"),
        "webhook": _text(item, "webhook"),
    }


def _day(moment: datetime | None) -> str:
    return (moment or datetime.now(UTC).replace(tzinfo=None)).date().isoformat()


# Parquet, through DuckDB.


_local = threading.local()


def _duckdb() -> Any:
    """An in-memory DuckDB per thread (its start costs ~0.1 s; a connection is not shared across
    threads), made on the first file written."""
    if not hasattr(_local, "connection"):
        import duckdb  # the analytics layer's; imported here only, when a file is written

        _local.connection = duckdb.connect(":memory:")
    return _local.connection


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def parquet(columns: Sequence[Column], rows: Iterable[Mapping[str, Any]]) -> bytes:
    """`rows` as one Parquet file (zstd), columns in `columns`' order and types."""
    connection = _duckdb()
    connection.execute(f"CREATE OR REPLACE TEMP TABLE t ({', '.join(f'{c.name} {c.sql}' for c in columns)})")
    with tempfile.TemporaryDirectory() as folder:
        # DuckDB's JSON reader loads the rows in one statement (a parameterised insert per row is ~10x slower).
        path = os.path.join(folder, "rows.json")
        with open(path, "w", encoding="utf-8") as written:
            for row in rows:
                written.write(json.dumps({c.name: _json_value(row.get(c.name)) for c in columns}, ensure_ascii=False) + "\n")
        connection.execute(f"COPY t FROM '{path}' (FORMAT json)")
    return _copy_out(connection, "SELECT * FROM t")


def _copy_out(connection: Any, query: str, parameters: Sequence[Any] = ()) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "out.parquet")
        connection.execute(f"COPY ({query}) TO '{path}' (FORMAT parquet, COMPRESSION zstd)", list(parameters))
        with open(path, "rb") as written:
            return written.read()


def _put(key: str, body: bytes) -> None:
    try:
        aws.s3().put_object(Bucket=settings().bucket_name, Key=key, Body=body, ContentType="application/vnd.apache.parquet")
    except Exception as exc:  # botocore's errors, whichever: the batch is retried
        raise StorageUnavailable(f"s3 put failed: {aws.error_code(exc) or type(exc).__name__}") from exc


def write_rows(table: str, rows: Sequence[Mapping[str, Any]], name: str) -> list[str]:
    """Write `rows` of `table` as one file per day, each `{name}.parquet`; the keys written."""
    by_day: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        by_day[row[DAY_COLUMN]].append(row)
    keys = []
    for day, day_rows in sorted(by_day.items()):
        key = f"{day_prefix(table, day)}{name}.parquet"
        _put(key, parquet(TABLES[table], day_rows))
        keys.append(key)
    return keys


def _batch_name(first: str, last: str) -> str:
    return f"{first.zfill(40)}-{last.zfill(40)}"


# The consumers (functions/session_changes).


def consume_changes(changes: Sequence[SessionChange]) -> int | None:
    """Write the versions of the live sessions among `changes`; then, for each session erased in
    them, remove its rows from its days' files. 0 (retry it all) when S3 failed."""
    if not settings().analytics_dataset:
        return None
    erased = {change.old["pk"]["S"]: change for change in changes if change.erased and change.old}
    rows: list[dict[str, Any]] = []
    days_before: set[tuple[str, str, str]] = set()  # (vendor, session id, the day of its listing before the change)
    for change in changes:
        row = session_row(change)
        if row is not None and change.new is not None and change.new["pk"]["S"] not in erased:
            rows.append({**row, DAY_COLUMN: _day(row["listed_at"])})
            before = _time(listed_at(change.old)) if change.old and not store.is_tombstone(change.old) else None
            if before is not None:
                days_before.add((row["vendor"], row["session_id"], _day(before)))
    # A session's versions live in its latest listing day (the views' windows rely on it): rows
    # of a day it left in this batch are not written, and the days it left are rid of its rows.
    last_day = {(row["vendor"], row["session_id"]): row[DAY_COLUMN] for row in rows}
    rows = [row for row in rows if row[DAY_COLUMN] == last_day[(row["vendor"], row["session_id"])]]
    left = sorted((vendor, session_id, day) for vendor, session_id, day in days_before if day != last_day[(vendor, session_id)])
    try:
        if rows:
            write_rows(SESSION_VERSIONS, rows, _batch_name(changes[0].sequence, changes[-1].sequence))
        for vendor, session_id, day in left:  # after the new day's rows are written: a failure here is retried
            _erase_in_day(SESSION_VERSIONS, day, vendor, session_id)
        for change in erased.values():
            old = change.old or {}
            erase_session(_text(old, "vendor") or "", _text(old, "session_id") or "", session_days(old))
    except StorageUnavailable as exc:
        logger.warning("analytics batch not written; retried", error=str(exc), changes=len(changes))
        return 0
    return None


def _session_ids(pks: set[str], known: Mapping[str, str]) -> dict[str, str]:
    """The session id of each session key: from the batch where it is, else its item (an erased
    session's tombstone holds none: its events make no row)."""
    found = {pk: known[pk] for pk in pks if pk in known}
    for pk in pks - set(found):
        reply = aws.dynamodb().get_item(
            TableName=settings().table_name,
            Key={"pk": {"S": pk}, "sk": {"S": store.SESSION_SK}},
            ProjectionExpression="session_id",
        )
        session_id = reply.get("Item", {}).get("session_id", {}).get("S")
        if session_id is not None:
            found[pk] = session_id
    return found


def consume_events(events: Sequence[StoredEvent]) -> int | None:
    """Write a row per stored event. 0 (retry it all) when S3 or DynamoDB failed."""
    if not settings().analytics_dataset:
        return None
    try:
        ids = _session_ids({e.session_pk for e in events}, {})
        rows = [
            {**row, DAY_COLUMN: _day(row["received_at"])}
            for event in events
            if event.session_pk in ids
            for row in [event_row(event, ids[event.session_pk])]
        ]
        if rows:
            write_rows(EVENT_ROWS, rows, _batch_name(events[0].sequence, events[-1].sequence))
    except Exception as exc:  # S3 or DynamoDB refused: the batch is retried, rows overwritten
        logger.warning("analytics events not written; retried", error=f"{type(exc).__name__}: {exc}", events=len(events))
        return 0
    return None


# Erasure (callvault/erasure.py's analytics step, and the consumer on a tombstone's change).


def session_days(item: Mapping[str, Any]) -> set[str]:
    """The days whose files may hold a session's rows, from its item before erasure: its listing
    day (which a later event may have moved) and the days of its times, a day either side."""
    moments = [_time(listed_at(item))] + [_time(_text(item, n)) for n in ("created_at", "started_at", "ended_at", "updated_at")]
    days = {m.date() for m in moments if m is not None}
    return {(d + timedelta(days=delta)).isoformat() for d in days for delta in (-1, 0, 1)}


def erase_session(vendor: str, session_id: str, days: Iterable[str]) -> int:
    """Remove the session's rows from every analytics file of `days` (each version of a file
    that held one: a rewritten file's earlier versions go too); the rows removed."""
    removed = 0
    for table in TABLES:
        for day in sorted(days):
            removed += _erase_in_day(table, day, vendor, session_id)
    return removed


def _erase_in_day(table: str, day: str, vendor: str, session_id: str) -> int:
    removed = 0
    by_key: dict[str, list[archive.Version]] = defaultdict(list)
    for version in archive.versions(day_prefix(table, day)):
        by_key[version.key].append(version)
    for key, key_versions in sorted(by_key.items()):
        doomed, kept, held = [], None, 0
        for index, version in enumerate(key_versions):  # a key's versions come newest first
            body = None if version.is_marker else archive.read_version(version)
            if body is None:
                continue
            count, rest = _without(_duckdb(), body, vendor, session_id)
            if count:
                doomed.append(version)
                held = max(held, count)
                kept = rest if index == 0 else kept  # only the current version is written again
        if not doomed:
            continue
        if kept is not None and kept[1] > 0:
            _put(key, kept[0])  # the rows of the others, as a new version of the same file
        archive.delete_versions(doomed)
        removed += held
    return removed


def _without(connection: Any, body: bytes, vendor: str, session_id: str) -> tuple[int, tuple[bytes, int]]:
    """How many rows of `body` (a Parquet file) are the session's, and the file without them
    (its bytes and row count)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "in.parquet")
        with open(path, "wb") as written:
            written.write(body)
        # Our column names and a temporary path in the text; the session's values are bound.
        source, where = f"read_parquet('{path}')", "vendor = ? AND session_id = ?"
        counted = f"SELECT count(*) FROM {source} WHERE {where}"  # noqa: S608  # nosec B608
        (count,) = connection.execute(counted, [vendor, session_id]).fetchone()
        if not count:
            return 0, (body, -1)
        (total,) = connection.execute(f"SELECT count(*) FROM {source}").fetchone()  # noqa: S608  # nosec B608
        rest = _copy_out(connection, f"SELECT * FROM {source} WHERE NOT ({where})", [vendor, session_id])  # noqa: S608  # nosec B608
        return int(count), (rest, int(total) - int(count))


def select_list(connection: Any, source: str, columns: Sequence[Column]) -> str:
    """`columns` as a select list over `source` (DuckDB's read_parquet of some files): a column
    added since those files were written is a typed null (as Athena reads it), not an error."""
    present = {row[0] for row in connection.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}  # noqa: S608  # nosec B608
    return ", ".join(c.name if c.name in present else f"CAST(NULL AS {c.sql}) AS {c.name}" for c in columns)


# Compaction (functions/analytics_compact, daily): a finished day's files merged into one.

COMPACT_DAYS = 30  # days looked at on each run, ending the day before yesterday (late versions land in old days)
_ROW_KEYS = {SESSION_VERSIONS: "vendor, session_id, version", EVENT_ROWS: "vendor, event_id"}


def compact_day(table: str, day: str) -> int:
    """Merge the day's files of `table` into one (rows repeated by retried batches once), named
    from its inputs, then delete the inputs' versions read; the files merged (0: nothing to do).

    Safe beside a writer: a file written meanwhile is not among the inputs and stays. Safe beside
    an erasure: when an input changed while merging (an erasure rewrote it), the merged file is
    deleted and the day is left to the next run; an erasure after the merge finds the merged file."""
    current = [v for v in archive.versions(day_prefix(table, day)) if not v.is_marker]
    latest: dict[str, archive.Version] = {}
    for version in current:  # a key's versions come newest first
        latest.setdefault(version.key, version)
    if len(latest) < 2:
        return 0
    inputs = sorted(latest.values(), key=lambda v: v.key)
    digest = hashlib.sha256("".join(f"{v.key}@{v.version_id};" for v in inputs).encode()).hexdigest()[:32]
    merged_key = f"{day_prefix(table, day)}compacted-{digest}.parquet"
    connection = _duckdb()
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index, version in enumerate(inputs):
            body = archive.read_version(version)
            if body is None:  # deleted since it was listed (another compaction, an erasure): next run
                return 0
            path = os.path.join(folder, f"{index}.parquet")
            with open(path, "wb") as written:
                written.write(body)
            paths.append(path)
        names = ", ".join(c.name for c in TABLES[table])
        files = ", ".join(f"'{p}'" for p in paths)
        source = f"read_parquet([{files}], union_by_name = true)"
        merged = (
            f"SELECT * FROM (SELECT {select_list(connection, source, TABLES[table])} FROM {source})"  # noqa: S608 - our own names and paths  # nosec B608
            f" QUALIFY row_number() OVER (PARTITION BY {_ROW_KEYS[table]} ORDER BY {names}) = 1 ORDER BY {_ROW_KEYS[table]}"
        )
        _put(merged_key, _copy_out(connection, merged))
    now: dict[str, str] = {}
    for version in archive.versions(day_prefix(table, day)):
        if not version.is_marker:
            now.setdefault(version.key, version.version_id)  # the newest
    changed = [v for v in inputs if v.key != merged_key and now.get(v.key) != v.version_id]
    if changed:
        archive.delete_versions(archive.key_versions(merged_key))
        logger.info("analytics compaction deferred: a file changed meanwhile", table=table, day=day)
        return 0
    doomed = [v for v in current if v.key != merged_key]
    archive.delete_versions(doomed)
    return len(inputs)


def compact(today: date, days: int = COMPACT_DAYS) -> dict[str, int]:
    """Compact every table's finished days (the `days` days ending the day before yesterday);
    the files merged, by table."""
    merged = dict.fromkeys(TABLES, 0)
    for back in range(2, days + 2):
        day = (today - timedelta(days=back)).isoformat()
        for table in TABLES:
            merged[table] += compact_day(table, day)
    return merged
