"""The template's side of SQL over calls: Glue tables that describe the files the code writes,
views Athena accepts (the Presto view form) with the code's text, a workgroup with a cutoff, the
stream filter that brings event items, and DuckDB's layer only where a function writes Parquet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from callvault import analytics
from callvault_local.streams import stream_functions
from callvault_local.template import load
from tests.conftest import ROOT

RESOURCES = load()["Resources"]


def _table(logical_id: str) -> dict[str, Any]:
    resource = RESOURCES[logical_id]
    assert resource["Type"] == "AWS::Glue::Table"
    assert resource["Properties"]["DatabaseName"] == {"Ref": "AnalyticsGlueDatabase"}
    table_input: dict[str, Any] = resource["Properties"]["TableInput"]
    return table_input


@pytest.mark.parametrize(("logical_id", "name"), [("SessionVersionsTable", "session_versions"), ("EventRowsTable", "event_rows")])
def test_each_table_describes_the_files_the_code_writes(logical_id: str, name: str) -> None:
    table = _table(logical_id)
    assert table["Name"] == name and table["TableType"] == "EXTERNAL_TABLE"
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert columns == [(c.name, c.glue) for c in analytics.TABLES[name]]
    assert table["PartitionKeys"] == [{"Name": analytics.DAY_COLUMN, "Type": "string"}]
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    params = table["Parameters"]
    # Partition projection over the day folders the code names: no crawler, no MSCK REPAIR.
    assert params["projection.enabled"] == "true" and params["projection.day.type"] == "date"
    assert params["projection.day.format"] == "yyyy-MM-dd"
    location = params["storage.location.template"]["Fn::Sub"]
    assert location == "s3://${ArchiveBucket}/" + analytics.day_prefix(name, "${!day}")
    assert not any(r["Type"] == "AWS::Glue::Crawler" for r in RESOURCES.values())


VIEWS = [("SessionsView", "sessions"), ("EventsView", "events")]
# The Athena (Trino) type a Glue (Hive) column reads as: Athena's timestamps are milliseconds.
ATHENA_TYPE = {"string": "varchar", "timestamp": "timestamp(3)", "double": "double", "bigint": "bigint", "boolean": "boolean"}
DUCKDB_TYPE = {"VARCHAR": "varchar", "TIMESTAMP": "timestamp(3)", "DOUBLE": "double", "BIGINT": "bigint", "BOOLEAN": "boolean"}


def presto_view(table: dict[str, Any]) -> dict[str, Any]:
    """The view's definition as Trino's Hive connector reads a Glue view (ViewReaderUtil.PrestoViewReader):
    `/* Presto View: <base64 of the ConnectorViewDefinition's JSON> */`, the database in the text."""
    prefix, encoded, suffix = table["ViewOriginalText"]["Fn::Join"][1]
    assert (prefix, suffix) == ("/* Presto View: ", " */")
    document: dict[str, Any] = json.loads(encoded["Fn::Base64"]["Fn::Sub"].replace("${AnalyticsDatabase}", "calls"))
    return document


def glue_tables() -> dict[str, dict[str, Any]]:
    """The template's Glue tables (not views) by name."""
    return {
        r["Properties"]["TableInput"]["Name"]: r["Properties"]["TableInput"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::Glue::Table" and r["Properties"]["TableInput"]["TableType"] == "EXTERNAL_TABLE"
    }


@pytest.mark.parametrize(("logical_id", "name"), VIEWS)
def test_each_view_is_a_presto_view_of_the_codes_text(logical_id: str, name: str) -> None:
    table = _table(logical_id)
    # What Trino recognizes as its own view (isTrinoView): the type, presto_view and its comment.
    assert table["Name"] == name and table["TableType"] == "VIRTUAL_VIEW"
    assert table["Parameters"] == {"presto_view": "true", "comment": "Presto View"}
    assert table["ViewExpandedText"] == "/* Presto View */"
    document = presto_view(table)
    assert set(document) == {"originalSql", "catalog", "schema", "columns"}  # ConnectorViewDefinition's fields, JSON-named
    assert document["originalSql"] == analytics.VIEWS[name]
    assert (document["catalog"], document["schema"]) == ("awsdatacatalog", "calls")
    assert all(set(c) == {"name", "type"} for c in document["columns"])
    assert [(c["name"], c["type"]) for c in document["columns"]] == [(c.name, c.presto) for c in analytics.VIEW_COLUMNS[name]]
    # Glue's own description of the view: the same columns, in Hive's type names.
    described = [(c["Name"], ATHENA_TYPE[c["Type"]]) for c in table["StorageDescriptor"]["Columns"]]
    assert described == [(c["name"], c["type"]) for c in document["columns"]]


@pytest.mark.parametrize(("logical_id", "name"), VIEWS)
def test_each_views_sql_is_trino_sql_that_yields_the_columns_it_declares(logical_id: str, name: str) -> None:
    """Athena checks a view's stored columns against what its SQL yields over the tables (a
    mismatch is "stale or in invalid state"); with no Athena here, sqlglot's Trino and Presto
    parsers read the text and its type inference runs it over the Glue tables' columns."""
    from sqlglot import ErrorLevel, exp, parse_one
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify

    document = presto_view(_table(logical_id))
    for dialect in ("trino", "presto"):
        parsed = parse_one(document["originalSql"], read=dialect, error_level=ErrorLevel.RAISE)
        assert isinstance(parsed, exp.Query)
    tables = glue_tables()
    named = {t.name for t in parsed.find_all(exp.Table)}
    assert named and named <= set(tables)  # the tables it reads are the template's, in the view's database
    schema: dict[str, object] = {
        t: {c["Name"]: ATHENA_TYPE[c["Type"]] for c in [*tables[t]["StorageDescriptor"]["Columns"], *tables[t]["PartitionKeys"]]}
        for t in named
    }
    typed = annotate_types(qualify(parsed, schema=schema, dialect="trino"), schema=schema, dialect="trino")
    assert isinstance(typed, exp.Query)
    yielded = [(column.alias_or_name, column.type.sql("trino").lower() if column.type else None) for column in typed.selects]
    assert yielded == [(c["name"], c["type"]) for c in document["columns"]]


@pytest.mark.parametrize(("logical_id", "name"), VIEWS)
def test_duckdb_answers_each_view_with_the_columns_athena_declares(logical_id: str, name: str, tmp_path: Path) -> None:
    """`callvault sql`'s view over real files (a row of each table written by the code, in its day
    folder) has Athena's columns, in its order, of the same types."""
    from callvault_local import sql

    for table, columns in analytics.TABLES.items():
        folder = tmp_path / analytics.day_prefix(table, "2026-12-01")
        folder.mkdir(parents=True)
        (folder / "batch.parquet").write_bytes(analytics.parquet(columns, [{c.name: None for c in columns}]))
    connection = sql.open_dataset(tmp_path)
    try:
        described = connection.execute(f"DESCRIBE {name}").fetchall()
    finally:
        connection.close()
    declared = presto_view(_table(logical_id))["columns"]
    assert [(row[0], DUCKDB_TYPE[row[1]]) for row in described] == [(c["name"], c["type"]) for c in declared]


def test_the_workgroup_enforces_its_result_location_and_a_cutoff() -> None:
    workgroup = RESOURCES["AnalyticsWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert workgroup["EnforceWorkGroupConfiguration"] is True
    assert workgroup["BytesScannedCutoffPerQuery"] == {"Ref": "AthenaBytesScannedCutoff"}
    assert workgroup["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_S3"
    assert workgroup["ResultConfiguration"]["OutputLocation"] == {"Fn::Sub": "s3://${ArchiveBucket}/athena-results/"}


def test_the_analyst_policy_grants_reads_of_the_dataset_and_no_wildcard_action() -> None:
    statements = RESOURCES["AnalystPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    actions = [a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert not any(a.endswith("*") for a in actions)
    writes = [s for s in statements if {"s3:PutObject"} & set(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    assert [s["Resource"] for s in writes] == [{"Fn::Sub": "${ArchiveBucket.Arn}/athena-results/*"}]
    assert "AnalystPolicyArn" in load()["Outputs"] and "AnalyticsWorkGroupName" in load()["Outputs"]


def _record(event_name: str, sk: str, image: dict[str, Any]) -> dict[str, Any]:
    return {"eventName": event_name, "dynamodb": {"Keys": {"pk": {"S": "vapi#d"}, "sk": {"S": sk}}, "NewImage": image}}


def test_the_stream_function_receives_session_changes_and_event_inserts_only() -> None:
    (function,) = [f for f in stream_functions() if f.name == "SessionChangesFunction"]
    event = {"event_id": {"S": "e"}, "type": {"S": "t"}}
    assert function.accepts(_record("MODIFY", "SESSION", {"status": {"S": "ended"}}))
    assert function.accepts(_record("INSERT", "EVENT#e", event))
    assert not function.accepts(_record("MODIFY", "EVENT#e", event))
    assert not function.accepts(_record("REMOVE", "EVENT#e", {}))
    assert not function.accepts(_record("INSERT", "WATERMARK", {"watermark": {"S": "x"}}))


def test_duckdb_is_in_its_own_layer_on_the_functions_that_write_parquet_only() -> None:
    assert "duckdb" not in (ROOT / "layers/callvault/requirements.txt").read_text()
    assert "duckdb==" in (ROOT / "layers/analytics/requirements.txt").read_text()
    users = sorted(
        name
        for name, r in RESOURCES.items()
        if r["Type"] == "AWS::Serverless::Function" and {"Ref": "AnalyticsLayer"} in r["Properties"].get("Layers", [])
    )
    assert users == ["AnalyticsCompactFunction", "SessionChangesFunction", "SessionsEraseFunction"]
    # Nothing at module level imports it: the webhook functions share callvault.analytics' importers.
    source = (ROOT / "layers/callvault/callvault/analytics.py").read_text()
    assert "\nimport duckdb" not in source and "\nfrom duckdb" not in source
