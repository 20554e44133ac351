"""The analytics dataset made through the real pipeline (webhooks and reconcile on moto, the
table's stream delivered to the session-changes function as Lambda would), queried with the
README's queries (docs/queries/) on DuckDB, and erased with the session."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from callvault import analytics, config, erasure, reconcile, sessions, store
from callvault.models import Recording, RecordingState, Session
from callvault_local import deployed, sql
from callvault_local.fake_vendor_apis import FakeVendorApi
from callvault_local.streams import StreamDelivery, deliveries
from tests.conftest import ROOT, Stored, payload, post_webhook

QUERIES = ROOT / "docs" / "queries"
WEBHOOKS = [
    ("vapi", "server-messages", "vapi/end-of-call-report"),
    ("cozmox", "server-messages", "cozmox/end-of-call-report"),
    ("retell", "events", "retell/call-started"),
    ("retell", "events", "retell/call-analyzed"),
    ("elevenlabs", "post-call", "elevenlabs/post-call-transcription"),
    ("speaknode", "conversation-complete", "speaknode/conversation-complete"),
    ("agentsessions", "session-completed", "agentsessions/session-completed"),
    ("voiceos", "events", "voiceos/conversation-ended"),
]
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def deployed_with_it_on() -> Iterator[None]:
    """The functions run as a stack deployed with this feature on (it is off by default)."""
    with deployed.parameters(AnalyticsDataset="enabled"):
        yield


def session_changes(table: str) -> StreamDelivery:
    (delivery,) = [
        d for d in deliveries(table, backoff_seconds=0, log=lambda _: None) if d.function.name == "SessionChangesFunction"
    ]
    return delivery


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("API_RETRIES", "1")
    monkeypatch.setenv("API_BACKOFF_SECONDS", "0.01")
    config.settings.cache_clear()
    yield
    config.settings.cache_clear()


@pytest.fixture
def pipeline(stored: Stored, quick_retries: None) -> dict[str, Any]:
    """Every sample webhook stored, two VoiceOS calls pulled by reconcile (the webhooks missed
    them), one recording failed, and the stream delivered; the ids stored, by how."""
    webhook_ids = []
    for vendor, webhook, name in WEBHOOKS:
        answer = post_webhook(vendor, webhook, payload(name))
        assert answer.status == 200 and answer.json["status"] == "stored", answer
        webhook_ids.append((vendor, answer.json["session_id"]))
    with FakeVendorApi("voiceos", key="right-key") as api:
        api.add("pulled-1", NOW - timedelta(minutes=30), "ended")
        api.add("pulled-2", NOW - timedelta(minutes=20), "ended")
        adapter, reconciler = reconcile.adapter_with_reconciler("voiceos")
        client = reconcile.client_for(reconciler, "right-key", api.url, allow_loopback=True)
        report = reconcile.run_pass(adapter, reconciler, client, since=None, now=NOW)
        assert report.stored == 2
    vendor, session_id = webhook_ids[0]
    claim = store.claim_recording(vendor, session_id, "test-claim", NOW, 60)
    assert claim is not None  # the copier's own claim, then its outcome: the recording failed
    store.finish_recording(vendor, session_id, "test-claim", Recording(state=RecordingState.FAILED, error="http 404"))
    session_changes(stored.table).poll()
    return {"webhooks": webhook_ids, "pulled": [("voiceos", "pulled-1"), ("voiceos", "pulled-2")], "failed": (vendor, session_id)}


def query(sql_text: str, tmp_path: Path) -> list[dict[str, Any]]:
    folder = tmp_path / f"dataset-{len(list(tmp_path.iterdir()))}"
    sql.download_dataset(folder)
    connection = sql.open_dataset(folder)
    try:
        return sql.rows_of(sql.run_duckdb(connection, sql_text))
    finally:
        connection.close()


def docs_query(name: str, tmp_path: Path) -> list[dict[str, Any]]:
    return query((QUERIES / f"{name}.sql").read_text(), tmp_path)


def test_one_sessions_row_per_call_its_latest_state(pipeline: dict[str, Any], tmp_path: Path) -> None:
    rows = query("SELECT * FROM sessions", tmp_path)
    everyone = pipeline["webhooks"] + pipeline["pulled"]
    assert sorted((r["vendor"], r["session_id"]) for r in rows) == sorted(set(everyone))
    for row in rows:
        session = sessions.get_session(row["vendor"], row["session_id"])
        assert session is not None
        assert row["status"] == (session.status.value if session.status else None)
        assert row["duration_seconds"] == session.duration_seconds
        assert row["ended_reason"] == session.ended_reason
        assert row["cost_usd"] == (session.cost.total_usd if session.cost else None)
        assert row["agent_id"] == session.agent.id and row["agent_name"] == session.agent.name
        assert row["turns"] == len(session.transcript)
        assert row["recording_state"] == session.recording.state.value
        for moment in ("created_at", "started_at", "ended_at"):
            given = getattr(session, moment)
            told = datetime.fromisoformat(given.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None) if given else None
            assert row[moment] == told, moment
    # Each change of a session made a version: a call with two events has two (or more) rows in the base table.
    versions = query("SELECT vendor, session_id, count(*) AS n FROM session_versions GROUP BY 1, 2", tmp_path)
    assert {(r["vendor"], r["session_id"]): r["n"] for r in versions}[("retell", pipeline["webhooks"][2][1])] >= 2


def test_one_events_row_per_stored_event_with_its_source(pipeline: dict[str, Any], stored: Stored, tmp_path: Path) -> None:
    rows = query("SELECT * FROM events", tmp_path)
    items = [i for i in stored.items() if i["sk"].startswith("EVENT#")]
    assert sorted(r["event_id"] for r in rows) == sorted(i["event_id"] for i in items)
    assert Counter(r["source"] for r in rows) == Counter(i["source"] for i in items)
    assert {r["session_id"] for r in rows if r["source"] == "pull"} == {"pulled-1", "pulled-2"}


def test_the_analysis_verdicts_where_the_vendor_gives_them(pipeline: dict[str, Any], tmp_path: Path) -> None:
    rows = {r["vendor"]: r for r in query("SELECT vendor, analysis_success, sentiment FROM sessions", tmp_path)}
    analysis = payload("retell/call-analyzed")["call"]["call_analysis"]
    assert rows["retell"]["analysis_success"] == analysis["call_successful"]
    assert rows["retell"]["sentiment"] == analysis["user_sentiment"]
    assert rows["speaknode"]["analysis_success"] is None and rows["speaknode"]["sentiment"] is None


# Which vendor's payload fills which metric column (VENDORS.md "What teams expect"; null elsewhere).
METRICS_FILLED = {
    "vapi": set(analytics.METRIC_COLUMNS),
    "cozmox": set(analytics.METRIC_COLUMNS),
    "retell": {"latency_p50_ms", "latency_p90_ms", "agent_talk_seconds", "customer_talk_seconds"},
    "elevenlabs": {"interruptions"},
    "speaknode": {"interruptions", "agent_talk_seconds", "customer_talk_seconds"},
    "agentsessions": set(),
    "voiceos": set(),
}


def test_what_teams_measure_as_columns_where_the_vendor_says_it(pipeline: dict[str, Any], tmp_path: Path) -> None:
    columns = analytics.METRIC_COLUMNS
    rows = query(f"SELECT vendor, session_id, {', '.join(columns)} FROM sessions", tmp_path)
    filled: dict[str, set[str]] = {}
    for row in rows:
        session = sessions.get_session(row["vendor"], row["session_id"])
        assert session is not None
        told = session.metrics.model_dump() if session.metrics else dict.fromkeys(columns)
        assert {c: row[c] for c in columns} == told, row["vendor"]  # the read API's metrics, as columns
        filled.setdefault(row["vendor"], set()).update(c for c in columns if row[c] is not None)
    assert filled == METRICS_FILLED
    retell = payload("retell/call-analyzed")["call"]["latency"]["e2e"]
    (retell_row,) = [r for r in rows if r["vendor"] == "retell"]
    assert (retell_row["latency_p50_ms"], retell_row["latency_p90_ms"]) == (retell["p50"], retell["p90"])


def test_latency_and_interruptions(pipeline: dict[str, Any], tmp_path: Path) -> None:
    rows = docs_query("latency_and_interruptions", tmp_path)
    ended: dict[tuple[str, str | None], list[Session]] = {}
    for vendor, session_id in set(pipeline["webhooks"] + pipeline["pulled"]):
        session = sessions.get_session(vendor, session_id)
        assert session is not None
        if session.status is not None and session.status.value == "ended":
            ended.setdefault((vendor, session.agent.id), []).append(session)
    assert {(r["vendor"], r["agent_id"]): r["calls"] for r in rows} == {k: len(v) for k, v in ended.items()}
    by_vendor = {r["vendor"]: r for r in rows if r["vendor"] in ("vapi", "retell", "elevenlabs", "agentsessions")}
    assert by_vendor["vapi"]["median_latency_ms"] == 1270.0 and by_vendor["vapi"]["interruptions_per_call"] == 1.0
    assert by_vendor["vapi"]["agent_talk_share"] == 3.0 / 5.0
    assert by_vendor["retell"]["worst_p90_latency_ms"] == 1262.0 and by_vendor["retell"]["interruptions_per_call"] is None
    assert by_vendor["elevenlabs"]["interruptions_per_call"] == 1.0 and by_vendor["elevenlabs"]["median_latency_ms"] is None
    assert all(by_vendor["agentsessions"][c] is None for c in ("median_latency_ms", "interruptions_per_call", "agent_talk_share"))


def test_volume_and_cost(pipeline: dict[str, Any], tmp_path: Path) -> None:
    rows = docs_query("volume_and_cost", tmp_path)
    assert sum(r["calls"] for r in rows) == len(set(pipeline["webhooks"] + pipeline["pulled"]))
    expected: dict[str, float] = {}
    for vendor, session_id in set(pipeline["webhooks"] + pipeline["pulled"]):
        session = sessions.get_session(vendor, session_id)
        assert session is not None
        expected[vendor] = expected.get(vendor, 0.0) + ((session.cost.total_usd if session.cost else None) or 0.0)
    by_vendor: dict[str, float] = {}
    for row in rows:
        by_vendor[row["vendor"]] = by_vendor.get(row["vendor"], 0.0) + (row["cost_usd"] or 0.0)
    assert {v: round(c, 4) for v, c in by_vendor.items() if c} == {v: round(c, 4) for v, c in expected.items() if c}


def test_end_reasons(pipeline: dict[str, Any], tmp_path: Path) -> None:
    rows = docs_query("end_reasons", tmp_path)
    expected: Counter[tuple[str, str | None]] = Counter()
    for vendor, session_id in set(pipeline["webhooks"] + pipeline["pulled"]):
        session = sessions.get_session(vendor, session_id)
        assert session is not None
        if session.status and session.status.value == "ended":
            expected[(vendor, session.ended_reason)] += 1
    assert {(r["vendor"], r["ended_reason"]): r["calls"] for r in rows} == dict(expected)


def test_duration_percentiles(pipeline: dict[str, Any], tmp_path: Path) -> None:
    rows = docs_query("duration_percentiles", tmp_path)
    durations: dict[tuple[str, str | None], list[float]] = {}
    for vendor, session_id in set(pipeline["webhooks"] + pipeline["pulled"]):
        session = sessions.get_session(vendor, session_id)
        assert session is not None
        if session.duration_seconds is not None:
            durations.setdefault((vendor, session.agent.id), []).append(session.duration_seconds)
    assert {(r["vendor"], r["agent_id"]): r["calls"] for r in rows} == {k: len(v) for k, v in durations.items()}
    for row in rows:
        assert row["max_seconds"] == max(durations[(row["vendor"], row["agent_id"])])
        assert min(durations[(row["vendor"], row["agent_id"])]) <= row["p50_seconds"] <= row["p90_seconds"] <= row["max_seconds"]


def test_failed_recordings(pipeline: dict[str, Any], tmp_path: Path) -> None:
    rows = docs_query("failed_recordings", tmp_path)
    assert [(r["vendor"], r["session_id"]) for r in rows] == [pipeline["failed"]]


def test_calls_recovered_by_reconcile(pipeline: dict[str, Any], tmp_path: Path) -> None:
    rows = docs_query("recovered_by_reconcile", tmp_path)
    assert [(r["vendor"], r["session_id"]) for r in rows] == pipeline["pulled"]
    assert all(r["pulled_events"] == 1 for r in rows)


def _files_holding(stored: Stored, tmp_path: Path, vendor: str, session_id: str) -> list[str]:
    """Every analytics object version (current or not) that holds a row of the session."""
    import duckdb

    client, holding = boto3.client("s3"), []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=stored.bucket, Prefix=analytics.PREFIX):
        for version in page.get("Versions", []):
            body = client.get_object(Bucket=stored.bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
            path = tmp_path / "held.parquet"
            path.write_bytes(body)
            found = duckdb.execute(
                f"SELECT count(*) FROM read_parquet('{path}') WHERE vendor = ? AND session_id = ?", [vendor, session_id]
            )
            if found.fetchall() != [(0,)]:
                holding.append(version["Key"])
    return holding


def test_erasure_rewrites_the_sessions_days_files_and_counts_the_rows(
    pipeline: dict[str, Any], stored: Stored, tmp_path: Path
) -> None:
    vendor, session_id = pipeline["webhooks"][3]  # retell: several versions and events
    before = _files_holding(stored, tmp_path, vendor, session_id)
    others = query(f"SELECT count(*) AS n FROM session_versions WHERE session_id <> '{session_id}'", tmp_path)[0]["n"]
    held = query(
        f"SELECT (SELECT count(*) FROM session_versions WHERE session_id = '{session_id}')"
        f" + (SELECT count(*) FROM event_rows WHERE session_id = '{session_id}') AS n",
        tmp_path,
    )[0]["n"]
    assert before and held >= 4
    done = erasure.erase(vendor, session_id, who="test")
    assert done is not None and done.counts()["analytics_rows"] == held
    assert set(done.counts()) >= {"items", "raw_bodies", "transcripts", "recordings"}  # the fields it had
    assert _files_holding(stored, tmp_path, vendor, session_id) == []  # no version of any file
    assert query(f"SELECT * FROM sessions WHERE session_id = '{session_id}'", tmp_path) == []
    assert query(f"SELECT count(*) AS n FROM session_versions WHERE session_id <> '{session_id}'", tmp_path)[0]["n"] == others
    # The tombstone's change then reaches the stream function: nothing left to remove, nothing written back.
    session_changes(stored.table).poll()
    assert _files_holding(stored, tmp_path, vendor, session_id) == []
    assert erasure.erase(vendor, session_id, who="test").counts()["analytics_rows"] == 0  # type: ignore[union-attr]


def test_a_batch_in_flight_during_the_erasure_cannot_bring_a_row_back(stored: Stored, tmp_path: Path) -> None:
    answer = post_webhook("retell", "events", payload("retell/call-analyzed"))
    session_id = answer.json["session_id"]
    # Erased before the stream function saw the session's writes: its batch then holds the
    # session's versions and, after them, the tombstone's change.
    done = erasure.erase("retell", session_id, who="test")
    assert done is not None and done.counts()["analytics_rows"] == 0
    session_changes(stored.table).poll()
    assert _files_holding(stored, tmp_path, "retell", session_id) == []


def test_a_retried_batch_overwrites_its_files(stored: Stored) -> None:
    post_webhook("retell", "events", payload("retell/call-analyzed"))
    records = session_changes(stored.table)._new_records()
    from callvault.changes import from_records

    batch = from_records(records)
    assert analytics.consume_changes(batch) is None
    keys = stored.keys(analytics.PREFIX)
    assert analytics.consume_changes(batch) is None  # Lambda's retry of the same batch
    assert sorted(set(stored.keys(analytics.PREFIX))) == sorted(set(keys))


def test_sql_output_formats() -> None:
    result = sql.Result(
        ["vendor", "calls", "at", "ok"], [("vapi", 2, datetime(2026, 12, 1, 9, 30), True), ("retell", 1, None, None)]
    )
    assert list(sql.render(result, "json")) == [
        '{"vendor": "vapi", "calls": 2, "at": "2026-12-01 09:30:00.000", "ok": true}',
        '{"vendor": "retell", "calls": 1, "at": null, "ok": null}',
    ]
    assert list(sql.render(result, "csv")) == ["vendor,calls,at,ok", "vapi,2,2026-12-01 09:30:00.000,true", "retell,1,,"]
    table = list(sql.render(result, "table"))
    assert table[0].split() == ["vendor", "calls", "at", "ok"] and table[-1] == "(2 rows)"
    out = io.StringIO()
    assert out.getvalue() == ""


def test_a_stack_with_the_dataset_disabled_writes_no_file(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_DATASET", "false")  # template: AnalyticsDataset disabled
    config.settings.cache_clear()
    post_webhook("retell", "events", payload("retell/call-analyzed"))
    session_changes(stored.table).poll()
    assert stored.keys(analytics.PREFIX) == []
    monkeypatch.setenv("ANALYTICS_DATASET", "true")
    config.settings.cache_clear()
    post_webhook("retell", "events", payload("retell/call-ended"))
    session_changes(stored.table).poll()
    assert stored.keys(analytics.PREFIX)


def test_compaction_merges_a_days_files_into_one_and_the_answers_stay(
    pipeline: dict[str, Any], stored: Stored, tmp_path: Path
) -> None:
    before = {
        view: sorted(map(str, query(f"SELECT * FROM {view} ORDER BY 1, 2, 3", tmp_path))) for view in ("sessions", "events")
    }
    days = {key.split("/")[2] for key in stored.keys(analytics.PREFIX)}
    files = len(set(stored.keys(analytics.PREFIX)))
    assert files > 2 * len(days)  # one file per batch: several a day
    # The scheduled run takes the day before yesterday and older: run it two days on.
    today = max(datetime.fromisoformat(d.removeprefix("day=")) for d in days).date() + timedelta(days=2)
    merged = analytics.compact(today, days=30)
    assert sum(merged.values()) == files
    left = set(stored.keys(analytics.PREFIX))  # every version: the inputs' are gone
    assert len(left) == len({(k.split("/")[1], k.split("/")[2]) for k in left}) and all("/compacted-" in k for k in left)
    after = {view: sorted(map(str, query(f"SELECT * FROM {view} ORDER BY 1, 2, 3", tmp_path))) for view in ("sessions", "events")}
    assert after == before
    assert analytics.compact(today, days=30) == dict.fromkeys(analytics.TABLES, 0)  # nothing left to merge
    # An erasure after the compaction finds the session in the merged file.
    vendor, session_id = pipeline["webhooks"][3]
    done = erasure.erase(vendor, session_id, who="test")
    assert done is not None and done.counts()["analytics_rows"] > 0
    assert _files_holding(stored, tmp_path, vendor, session_id) == []


def test_compaction_leaves_a_day_whose_file_changed_while_merging(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("retell/call-started", "retell/call-analyzed"):
        post_webhook("retell", "events", payload(name))
    session_changes(stored.table).poll()
    (day,) = {key.split("/")[2].removeprefix("day=") for key in stored.keys(analytics.day_prefix(analytics.EVENT_ROWS, "")[:-5])}
    inputs = sorted(set(stored.keys(analytics.day_prefix(analytics.EVENT_ROWS, day))))
    assert len(inputs) >= 2
    real_put = analytics._put

    def put_then_rewrite(key: str, body: bytes) -> None:  # an erasure rewrites an input meanwhile
        real_put(key, body)
        real_put(inputs[0], stored.body(inputs[0]))

    monkeypatch.setattr(analytics, "_put", put_then_rewrite)
    assert analytics.compact_day(analytics.EVENT_ROWS, day) == 0
    monkeypatch.setattr(analytics, "_put", real_put)
    assert sorted(set(stored.keys(analytics.day_prefix(analytics.EVENT_ROWS, day)))) == inputs  # no merged file left
    assert analytics.compact_day(analytics.EVENT_ROWS, day) == len(inputs)  # the next run merges


def test_files_written_before_the_metric_columns_still_compact_and_answer(stored: Stored, tmp_path: Path) -> None:
    """A stack upgraded to the metric columns keeps the files it wrote before: they read as
    null in those columns (as Athena reads a Parquet file without a column), and a day holding
    only such files still compacts."""
    older = tuple(c for c in analytics.SESSION_COLUMNS if c.name not in analytics.METRIC_COLUMNS)
    day = (NOW - timedelta(days=3)).date().isoformat()
    for index in (1, 2):
        row = {c.name: None for c in older} | {"vendor": "vapi", "session_id": f"old-{index}", "version": f"{index:040d}"}
        key = f"{analytics.day_prefix(analytics.SESSION_VERSIONS, day)}{index:040d}-{index:040d}.parquet"
        boto3.client("s3").put_object(Bucket=stored.bucket, Key=key, Body=analytics.parquet(older, [row]))
    columns = ", ".join(analytics.METRIC_COLUMNS)
    before = query(f"SELECT session_id, {columns} FROM sessions ORDER BY session_id", tmp_path)
    assert before == [{"session_id": f"old-{i}", **dict.fromkeys(analytics.METRIC_COLUMNS)} for i in (1, 2)]
    assert analytics.compact_day(analytics.SESSION_VERSIONS, day) == 2
    assert query(f"SELECT session_id, {columns} FROM sessions ORDER BY session_id", tmp_path) == before


def test_a_session_whose_listing_day_moves_keeps_one_row_in_its_new_day(stored: Stored, tmp_path: Path) -> None:
    """The first webhook tells no time (listed when first heard of: today); the next tells the
    call's start, days before: the session's rows move to that day, and `sessions` (whose window
    is per day, for pruning) still has one row for it."""
    started = payload("retell/call-started")
    call_id = started["call"]["call_id"]
    del started["call"]["start_timestamp"]
    assert post_webhook("retell", "events", started).status == 200
    session_changes(stored.table).poll()
    today = datetime.now(UTC).date().isoformat()
    assert query(f"SELECT day FROM sessions WHERE session_id = '{call_id}'", tmp_path) == [{"day": today}]

    analyzed = payload("retell/call-analyzed")
    analyzed["call"]["call_id"] = call_id
    assert post_webhook("retell", "events", analyzed).status == 200
    session_changes(stored.table).poll()
    call_day = datetime.fromtimestamp(analyzed["call"]["start_timestamp"] / 1000, UTC).date().isoformat()
    assert call_day != today
    rows = query(f"SELECT day, status FROM sessions WHERE session_id = '{call_id}'", tmp_path)
    assert rows == [{"day": call_day, "status": "ended"}]
    versions = query(f"SELECT DISTINCT day FROM session_versions WHERE session_id = '{call_id}'", tmp_path)
    assert versions == [{"day": call_day}]  # the day it left holds none of its rows


LOCAL = {"host": "127.0.0.1:3000", "content-type": "application/json"}


def _ask(mirror: sql.Mirror, query_text: str, headers: dict[str, str] = LOCAL, method: str = "POST") -> tuple[int, str]:
    body = json.dumps({"query": query_text, "format": "csv"}).encode()
    answered = sql.local_reply(mirror, method, sql.LOCAL_PATH, headers, body)
    assert answered is not None
    return answered[0], answered[2].decode()


def test_the_local_stack_answers_from_a_copy_kept_up_to_date(stored: Stored, tmp_path: Path) -> None:
    """`callvault sql`'s answers come from the stack's in-memory copy of the rows: a new file is
    fetched, an unchanged one is not fetched again, and a file the erasure rewrote or removed is
    not answered from."""
    mirror = sql.Mirror()
    try:
        first = post_webhook("retell", "events", payload("retell/call-analyzed")).json["session_id"]
        session_changes(stored.table).poll()
        assert _ask(mirror, "SELECT session_id FROM sessions") == (200, f"session_id\n{first}\n")
        assert mirror.sync([analytics.SESSION_VERSIONS]) == 0  # nothing changed: nothing fetched

        vapi = post_webhook("vapi", "server-messages", payload("vapi/end-of-call-report")).json["session_id"]
        session_changes(stored.table).poll()
        status, text = _ask(mirror, "SELECT session_id FROM sessions ORDER BY session_id")
        assert status == 200 and sorted(text.splitlines()[1:]) == sorted([first, vapi])

        assert erasure.erase("retell", first, who="test") is not None
        session_changes(stored.table).poll()
        assert _ask(mirror, "SELECT session_id FROM sessions") == (200, f"session_id\n{vapi}\n")
        assert list(mirror.folder.rglob("*.parquet")) == []  # no copy of a file outlives the loading of its rows
        header = _ask(mirror, "SELECT * FROM sessions LIMIT 0")[1].strip()
        assert header.split(",") == [c.name for c in analytics.VIEW_COLUMNS["sessions"]]  # Athena's columns
    finally:
        mirror.close()


@pytest.mark.parametrize(
    ("method", "headers", "status", "said"),
    [
        ("GET", LOCAL, 405, "takes POST"),
        ("POST", {**LOCAL, "host": "attacker.example:3000"}, 403, "only for this machine"),
        ("POST", {**LOCAL, "content-type": "text/plain"}, 415, "send JSON"),
    ],
)
def test_the_local_sql_route_answers_only_this_machines_cli(
    stored: Stored, method: str, headers: dict[str, str], status: int, said: str
) -> None:
    mirror = sql.Mirror()
    try:
        answered, text = _ask(mirror, "SELECT 1", headers, method)
        assert answered == status and said in json.loads(text)["message"]
    finally:
        mirror.close()


def test_a_query_over_http_reads_no_other_file(stored: Stored) -> None:
    mirror = sql.Mirror()
    try:
        status, text = _ask(mirror, "SELECT * FROM read_text('/etc/hostname')")
        assert status == 400 and json.loads(text)["message"].startswith("bad query: Permission Error"), text
        status, text = _ask(mirror, "SELEC 1")
        assert status == 400 and json.loads(text)["message"].startswith("bad query: stopped at"), text
    finally:
        mirror.close()
