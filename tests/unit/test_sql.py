"""`callvault sql`: the README's queries are Athena SQL that DuckDB runs transpiled; the deployed
path sends the query to the stack's Athena workgroup as written and prints what DuckDB's would;
a user's mistake is one line."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlglot
from moto import mock_aws

from callvault import analytics
from callvault_local import cli, sql
from callvault_local.console import UserError
from tests.unit.test_cli_mistakes import clean_env, one_line  # noqa: F401 - the fixture is used by name

ROOT = Path(__file__).resolve().parents[2]
QUERIES = sorted((ROOT / "docs" / "queries").glob("*.sql"))


def test_the_sql_docs_name_every_query() -> None:
    names = {q.stem for q in QUERIES}
    assert names >= {"volume_and_cost", "end_reasons", "duration_percentiles", "failed_recordings", "recovered_by_reconcile"}
    assert "latency_and_interruptions" in names
    page = (ROOT / "docs" / "sql.md").read_text()
    assert all(f"docs/queries/{name}.sql" in page for name in names)


@pytest.mark.parametrize("path", QUERIES, ids=lambda p: p.stem)
def test_each_query_is_athena_sql(path: Path) -> None:
    text = path.read_text()
    for dialect in ("athena", "trino"):
        (parsed,) = sqlglot.parse(text, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
        assert isinstance(parsed, sqlglot.exp.Query)
    sql.to_duckdb(text)  # and DuckDB's after transpiling


@pytest.mark.parametrize("path", QUERIES, ids=lambda p: p.stem)
def test_each_query_reads_only_the_days_it_asks_for(path: Path) -> None:
    """Every view a docs query reads is bounded by its `day` (the partition) against a constant,
    the form Athena prunes partitions by."""
    parsed = sqlglot.parse_one(path.read_text(), read="athena")
    views = {t.alias_or_name: t.name for t in parsed.find_all(sqlglot.exp.Table) if t.name in analytics.VIEWS}
    comparisons = parsed.find_all(sqlglot.exp.GTE, sqlglot.exp.GT, sqlglot.exp.EQ)
    bounded = {
        c.this.table or next(iter(views))  # unqualified: the query's one view
        for c in comparisons
        if isinstance(c.this, sqlglot.exp.Column)
        and c.this.name == analytics.DAY_COLUMN
        and isinstance(c.expression, sqlglot.exp.Literal)
    }
    assert views and set(views) == bounded, (views, bounded)


@pytest.mark.parametrize("view", sorted(analytics.VIEWS))
def test_the_views_are_athena_sql(view: str) -> None:
    (parsed,) = sqlglot.parse(analytics.VIEWS[view], read="athena", error_level=sqlglot.ErrorLevel.RAISE)
    assert isinstance(parsed, sqlglot.exp.Query)


def test_athena_dialect_is_transpiled_for_duckdb() -> None:
    text = "SELECT approx_percentile(duration_seconds, 0.9) AS p90 FROM sessions"
    assert "APPROX_QUANTILE" in sql.to_duckdb(text)


def test_a_dataset_with_no_files_yet_answers_empty(tmp_path: Path) -> None:
    connection = sql.open_dataset(tmp_path)
    result = sql.run_duckdb(connection, "SELECT vendor, count(*) AS calls FROM sessions GROUP BY vendor")
    assert result.columns == ["vendor", "calls"] and result.rows == []
    columns = sql.run_duckdb(connection, "SELECT * FROM sessions").columns
    assert columns == [c.name for c in analytics.SESSION_VIEW_COLUMNS]
    assert sql.run_duckdb(connection, "SELECT * FROM events").columns == [
        "vendor",
        "session_id",
        "event_id",
        "type",
        "received_at",
        "source",
        "day",
    ]


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("SELEC vendor FROM sessions", "callvault sql: bad query: "),
        ("SELECT nope FROM sessions", "callvault sql: bad query: "),
        ("DELETE FROM sessions", "callvault sql: only queries (SELECT, WITH ...) are run, not DELETE"),
        ("SELECT 1; SELECT 2", "callvault sql: give one query, not 2"),
    ],
)
def test_a_bad_query_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, query: str, said: str, closed_port: str
) -> None:
    if "nope" in query:  # parses: DuckDB is the one to refuse it
        with pytest.raises(UserError, match=r"^bad query: .*nope") as raised:
            sql.run_duckdb(sql.open_dataset(tmp_path), query)
        assert "\n" not in str(raised.value)
        return
    status, line = one_line(capsys, "sql", query, "--port", closed_port)  # told without a stack
    assert status == 1 and line.startswith(said), line


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("SELECT vendor FROM sessions WHERE", 'stopped at "WHERE" (line 1, column 29): something must follow it'),
        ("SELECT vendor FRM sessions GROUP BY 1", 'stopped at "sessions" (line 1, column 19): not expected there'),
        ("SELECT vendor\nFROM sessions ORDER vendor", 'stopped at "vendor" (line 2, column 21): not expected there'),
        ("SELECT count(* FROM sessions", 'stopped at "FROM" (line 1, column 16): expected )'),
        ("SELECT * FROM", 'stopped at "FROM" (line 1, column 10): expected table name'),
        ("SELECT 'unclosed FROM sessions", "cannot read the text from 'SELECT 'unclosed FROM se"),
    ],
)
def test_a_query_that_does_not_parse_names_the_word_it_stopped_at(
    capsys: pytest.CaptureFixture[str], query: str, said: str, closed_port: str
) -> None:
    status, line = one_line(capsys, "sql", query, "--port", closed_port)
    assert status == 1 and line.startswith(f"callvault sql: bad query: {said}"), line
    assert "\x1b" not in line  # sqlglot's underline escapes are not passed on


def test_only_the_tables_a_query_reads_are_fetched() -> None:
    assert sql.tables_read("SELECT count(*) FROM sessions") == {analytics.SESSION_VERSIONS}
    assert sql.tables_read("SELECT 1") == set()
    joined = "WITH s AS (SELECT * FROM sessions) SELECT * FROM s JOIN events e ON e.session_id = s.session_id"
    assert sql.tables_read(joined) == {analytics.SESSION_VERSIONS, analytics.EVENT_ROWS}
    assert sql.tables_read("SELECT * FROM event_rows WHERE day >= '2026-12-01'") == {analytics.EVENT_ROWS}


@pytest.fixture
def closed_port() -> str:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def test_no_local_stack_is_one_line(capsys: pytest.CaptureFixture[str], closed_port: str) -> None:
    status, line = one_line(capsys, "sql", "SELECT count(*) FROM sessions", "--port", closed_port)
    assert status != 0 and f"no local stack answers at http://127.0.0.1:{closed_port}" in line, line


@pytest.fixture
def athena() -> Iterator[Any]:
    from moto.athena.models import QueryResults, athena_backends

    with mock_aws():
        boto3.client("athena").create_work_group(Name="callvault-analytics")
        backend = athena_backends["123456789012"]["us-east-1"]
        rows: list[list[str | None]] = [
            ["vendor", "calls", "minutes", "first"],
            ["vapi", "2", "3.5", "2026-12-01 09:30:00.000"],
            ["retell", "1", None, None],
        ]
        canned = QueryResults(
            rows=[{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows],
            column_info=[
                {"Name": "vendor", "Type": "varchar"},
                {"Name": "calls", "Type": "bigint"},
                {"Name": "minutes", "Type": "double"},
                {"Name": "first", "Type": "timestamp"},
            ],
        )
        backend.query_results_queue.extend([canned] * len(sql.FORMATS))  # moto answers each execution with the next
        yield backend


def test_the_deployed_stack_runs_the_query_in_its_athena_workgroup(athena: Any, capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "docs" / "queries" / "volume_and_cost.sql").read_text()
    status = cli.main(["sql", text, "--workgroup", "callvault-analytics", "--database", "calls", "--format", "json"])
    assert status == 0
    (execution,) = athena.executions.values()
    assert execution.query == text  # Athena's own dialect: sent as written
    assert execution.workgroup.name == "callvault-analytics" and execution.context["Database"] == "calls"
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"vendor": "vapi", "calls": 2, "minutes": 3.5, "first": "2026-12-01 09:30:00.000"},
        {"vendor": "retell", "calls": 1, "minutes": None, "first": None},
    ]


def test_athena_and_duckdb_print_the_same(athena: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import datetime

    local = sql.Result(
        ["vendor", "calls", "minutes", "first"], [("vapi", 2, 3.5, datetime(2026, 12, 1, 9, 30)), ("retell", 1, None, None)]
    )
    for style in sql.FORMATS:
        assert cli.main(["sql", "SELECT 1", "--workgroup", "callvault-analytics", "--format", style]) == 0
        assert capsys.readouterr().out.splitlines() == list(sql.render(local, style))


def test_a_misspelt_table_is_told_with_the_tables_there_are(tmp_path: Path) -> None:
    with pytest.raises(UserError) as refused:
        sql.run_duckdb(sql.open_dataset(tmp_path), "SELECT * FROM sesions")
    said = str(refused.value)
    assert said.startswith("bad query: Catalog Error: Table with name sesions does not exist!")
    assert said.endswith("(tables: sessions, events, session_versions, event_rows)") and "\n" not in said
    with pytest.raises(UserError) as unknown_function:
        sql.run_duckdb(sql.open_dataset(tmp_path), "SELECT no_such_function(1)")
    assert "tables:" not in str(unknown_function.value)
