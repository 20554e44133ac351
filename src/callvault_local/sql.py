"""`callvault sql "<SQL>"`: a read-only query over the analytics dataset (DESIGN.md "SQL over calls").

Locally, the running stack (`callvault dev`) answers it (`POST /local/sql`): DuckDB over the
rows of the Parquet files in moto's bucket, held in memory (DuckDB's S3 extension cannot be
downloaded here), each file fetched again only when it changed, with the views `sessions` and
`events` made from the same text Athena's are (callvault/analytics.py). The CLI
itself then imports none of DuckDB, sqlglot or boto3: a query's answer costs the stack's work
and a loopback request (bench/sql_freshness.py). Against a deployed stack
(`--workgroup`, or `--stack` to read it from the stack's outputs), the query runs in its Athena
workgroup with the caller's AWS credentials. The query is written in Athena's dialect (Trino)
and transpiled to DuckDB's with sqlglot; both print the same formats.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from callvault_local.console import UserError

DIALECT = "athena"
FORMATS = ("table", "csv", "json")  # as cli.py offers them


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def to_duckdb(sql: str) -> str:
    """One query in Athena's dialect as DuckDB's; UserError when it is not one read-only query."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except SqlglotError as exc:
        raise UserError(f"bad query: {_parse_error(exc)}", status=1) from None
    if len(statements) != 1:
        raise UserError(f"give one query, not {len(statements)}", status=1)
    (statement,) = statements
    if not isinstance(statement, exp.Query):
        raise UserError(f"only queries (SELECT, WITH ...) are run, not {statement.key.upper()}", status=1)
    return statement.sql(dialect="duckdb")


def _parse_error(exc: Exception) -> str:
    """sqlglot's error as one line naming the word it stopped at (its message spans lines and
    underlines the word with terminal escapes)."""
    from sqlglot.errors import ParseError

    found = exc.errors[0] if isinstance(exc, ParseError) and exc.errors else None
    if found is None:  # the tokenizer's: an unterminated string or quoted name, its text in the message
        return _first_line(exc).replace("Error tokenizing", "cannot read the text from", 1) + " (an unclosed quote?)"
    word, description = found.get("highlight") or "", str(found.get("description") or "")
    if description.startswith("Required keyword"):  # "Required keyword: 'this' missing for <class ...Where>"
        said = "something must follow it"
    elif description.startswith("Expect"):  # "Expecting )", "Expected table name but got <Token ...>"
        said = "expected " + description.split(" ", 1)[-1].split(" but got ", 1)[0].rstrip(".")
    elif description.startswith("Invalid expression") or not description:
        said = "not expected there"
    else:
        said = description.split(" <", 1)[0].rstrip(".")
    column = int(found.get("col") or 0) - max(len(word) - 1, 0)  # sqlglot's column is the word's last character
    return f'stopped at "{word}" (line {found.get("line")}, column {column}): {said}'


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# The dataset on DuckDB.


def open_dataset(folder: Path, *, sealed: bool = False) -> Any:
    """A DuckDB connection whose tables and views are Athena's, over the dataset under `folder`
    (its `analytics/...` layout); `sealed`: it reads no other file (a query that names one is
    refused), for queries that come over HTTP."""
    import duckdb

    from callvault import analytics

    connection = duckdb.connect(":memory:")
    for table, columns in analytics.TABLES.items():
        files = folder / analytics.table_prefix(table)
        if any(files.glob(f"{analytics.DAY_COLUMN}=*/*.parquet")):
            pattern = str(files / f"{analytics.DAY_COLUMN}=*" / "*.parquet")
            day = analytics.DAY_COLUMN  # the hive partition, a string as in Athena (not a date)
            options = f"hive_partitioning = true, hive_types = {{'{day}': VARCHAR}}, union_by_name = true"
            source = f"read_parquet('{pattern}', {options})"
            names = analytics.select_list(connection, source, columns)  # files older than a column: null there
            # Our own names and a temporary folder in the text.
            view = f"CREATE VIEW {table} AS SELECT {names}, {day} FROM {source}"  # noqa: S608  # nosec B608
            connection.execute(view)
        else:  # no file yet: the same columns, no rows
            types = ", ".join(f"{c.name} {c.sql}" for c in columns)
            connection.execute(f"CREATE TABLE {table} ({types}, {analytics.DAY_COLUMN} VARCHAR)")
    for view, text in analytics.VIEWS.items():
        connection.execute(f"CREATE VIEW {view} AS {to_duckdb(text)}")
    if sealed:  # once off, DuckDB refuses to turn file access back on
        connection.execute("SET allowed_directories = $1", [[str(folder.resolve()) + "/"]])
        connection.execute("SET enable_external_access = false")
    return connection


def run_duckdb(connection: Any, sql: str) -> Result:
    import duckdb

    query = to_duckdb(sql)
    try:
        cursor = connection.execute(query)
        rows = cursor.fetchall()
    except duckdb.CatalogException as exc:
        if "Table with name" not in str(exc):
            raise UserError(f"bad query: {_first_line(exc)}", status=1) from None
        from callvault import analytics  # a misspelt table: say which there are

        tables = ", ".join([*analytics.VIEWS, *analytics.TABLES])
        raise UserError(f"bad query: {_first_line(exc)} (tables: {tables})", status=1) from None
    except duckdb.Error as exc:
        raise UserError(f"bad query: {_first_line(exc)}", status=1) from None
    return Result([d[0] for d in cursor.description], rows)


def tables_read(sql: str) -> set[str]:
    """The dataset's tables (analytics.TABLES) a query in Athena's dialect reads, through the
    views it names: only their files are fetched."""
    import sqlglot
    from sqlglot import exp

    from callvault import analytics

    def named(text: str) -> set[str]:
        statement = sqlglot.parse_one(text, read=DIALECT)
        ctes = {cte.alias_or_name for cte in statement.find_all(exp.CTE)}
        return {table.name for table in statement.find_all(exp.Table)} - ctes

    found: set[str] = set()
    for name in named(sql):
        found |= named(analytics.VIEWS[name]) if name in analytics.VIEWS else {name}
    return found & set(analytics.TABLES)


DOWNLOADS_AT_ONCE = 8  # moto answers each GET in a thread of its own; the files are small


def _listing(tables: Iterable[str]) -> dict[str, str]:
    """The bucket's files of `tables` (callvault.aws's S3, settings' bucket): key -> ETag."""
    from callvault import analytics, aws
    from callvault.config import settings

    client, bucket = aws.s3(), settings().bucket_name
    return {
        entry["Key"]: entry["ETag"]
        for table in tables
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=analytics.table_prefix(table))
        for entry in page.get("Contents", [])
    }


def _fetch(folder: Path, keys: Iterable[str]) -> None:
    """Copy `keys` from the bucket under `folder`, several at once."""
    from concurrent.futures import ThreadPoolExecutor

    from callvault import aws
    from callvault.config import settings

    client, bucket = aws.s3(), settings().bucket_name

    def fetch(key: str) -> None:
        target = folder / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())

    with ThreadPoolExecutor(DOWNLOADS_AT_ONCE) as pool:
        list(pool.map(fetch, keys))


def download_dataset(folder: Path, tables: Iterable[str] | None = None) -> int:
    """Copy the bucket's files of `tables` (all, by default) under `folder`; how many."""
    from callvault import analytics

    keys = _listing(analytics.TABLES if tables is None else tables)
    _fetch(folder, keys)
    return len(keys)


class Mirror:
    """The bucket's analytics rows held in an in-memory DuckDB of the local stack's, brought up to
    date before each query: a file new or changed since (its ETag) fetched and its rows loaded in
    place of the old ones, a file gone (an erasure, a compaction) its rows dropped. A query then
    reads memory, not one file per stream batch; no query answers from a file the bucket no
    longer holds, and no copy of a file outlives its loading."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="callvault-sql-")
        self.folder = Path(self._folder.name)  # a fetched file, until its rows are loaded
        self._held: dict[str, str] = {}  # key -> the ETag of the rows loaded
        self._lock = threading.Lock()  # one query or load at a time on the one connection
        self._connection: Any = None

    def _open(self) -> Any:
        """The connection: a table of rows per dataset table (each row's file), Athena's tables
        and views over them; reading no file but the fetched ones."""
        import duckdb

        from callvault import analytics

        connection = duckdb.connect(":memory:")
        day = analytics.DAY_COLUMN
        for table, columns in analytics.TABLES.items():
            types = ", ".join(f"{c.name} {c.sql}" for c in columns)
            connection.execute(f"CREATE TABLE {table}_rows ({types}, {day} VARCHAR, file VARCHAR)")
            names = ", ".join(c.name for c in columns)
            connection.execute(f"CREATE VIEW {table} AS SELECT {names}, {day} FROM {table}_rows")  # noqa: S608  # nosec B608
        for view, text in analytics.VIEWS.items():
            connection.execute(f"CREATE VIEW {view} AS {to_duckdb(text)}")
        connection.execute("SET allowed_directories = $1", [[str(self.folder.resolve()) + "/"]])
        connection.execute("SET enable_external_access = false")  # once off, DuckDB refuses to turn it back on
        return connection

    def answer(self, sql: str, style: str) -> list[str]:
        """The query's result in `style`'s lines; UserError for a bad query."""
        to_duckdb(sql)  # a bad query is told before any file is fetched
        with self._lock:
            self._sync(tables_read(sql))
            return list(render(run_duckdb(self._connection, sql), style))

    def sync(self, tables: Iterable[str]) -> int:
        """Bring `tables`' rows up to date; the files fetched."""
        with self._lock:
            return self._sync(tables)

    def _sync(self, tables: Iterable[str]) -> int:
        from callvault import analytics

        if self._connection is None:
            self._connection = self._open()
        tables = list(tables)
        listed = _listing(tables)
        table_of = {analytics.table_prefix(t): t for t in tables}
        stale = [key for key, etag in listed.items() if self._held.get(key) != etag]
        gone = [key for key in self._held if key.startswith(tuple(table_of)) and key not in listed]
        _fetch(self.folder, stale)
        folder = str(self.folder) + "/"
        for prefix, table in table_of.items():  # a statement per table, not per file: a compaction replaces hundreds
            dropped = [key for key in [*gone, *stale] if key.startswith(prefix)]
            if dropped:
                self._connection.execute(f"DELETE FROM {table}_rows WHERE list_contains($1, file)", [dropped])  # noqa: S608  # nosec B608
            loaded = [folder + key for key in stale if key.startswith(prefix)]
            if loaded:
                # The day is the key's folder (the hive partition, as Athena reads it); the file, its key.
                day = f"regexp_extract(filename, '/{analytics.DAY_COLUMN}=([^/]+)/', 1) AS {analytics.DAY_COLUMN}"
                source = "read_parquet($1, hive_partitioning = false, union_by_name = true, filename = true)"
                self._connection.execute(
                    f"INSERT INTO {table}_rows BY NAME SELECT * EXCLUDE (filename), {day},"  # noqa: S608  # nosec B608
                    f" substr(filename, {len(folder) + 1}) AS file FROM {source}",
                    [loaded],
                )
        for key in gone:
            del self._held[key]
        for key in stale:
            (self.folder / key).unlink()
            self._held[key] = listed[key]
        return len(stale)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._folder.cleanup()


LOCAL_PATH = "/local/sql"  # the local stack's route for `callvault sql` (callvault_local.dev)


def local_reply(
    mirror: Mirror, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes] | None:
    """The local stack's answer to `POST /local/sql` ({"query", "format"}): the result's lines, or
    400 with the one-line error; None for any other path. JSON only (a browser cannot send it
    from another site without asking first) and only to a loopback host name (not a rebound DNS name)."""
    if path != LOCAL_PATH:
        return None

    def error(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
        return status, {"content-type": "application/json"}, json.dumps({"message": message}).encode()

    host = {k.lower(): v for k, v in headers.items()}.get("host", "").rsplit(":", 1)[0]
    if method != "POST":
        return error(405, f"{LOCAL_PATH} takes POST")
    if host not in ("127.0.0.1", "localhost", "[::1]"):
        return error(403, "only for this machine's own callvault sql")
    if not {k.lower(): v for k, v in headers.items()}.get("content-type", "").startswith("application/json"):
        return error(415, 'send JSON: {"query": ..., "format": ...}')
    try:
        asked = json.loads(body)
        sql, style = str(asked["query"]), str(asked.get("format", "table"))
    except (ValueError, KeyError, TypeError):
        return error(400, 'send JSON: {"query": ..., "format": ...}')
    if style not in FORMATS:
        return error(400, f"format: one of {', '.join(FORMATS)}")
    try:
        lines = mirror.answer(sql, style)
    except UserError as exc:
        return error(400, str(exc))
    return 200, {"content-type": "text/plain; charset=utf-8"}, "".join(f"{line}\n" for line in lines).encode()


def ask_local_stack(args: Any, out: Any) -> None:
    """The query answered by the running local stack, printed; UserError (one line) for a bad
    query or no stack."""
    import urllib.error
    import urllib.request

    from callvault_local.console import local_stack, not_running

    stack = local_stack(args)
    request = urllib.request.Request(  # noqa: S310 - the local stack's loopback URL
        stack.url + LOCAL_PATH,
        data=json.dumps({"query": args.query, "format": args.format}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310  # nosec B310
            out.write(response.read().decode())
    except urllib.error.HTTPError as exc:
        try:
            message = str(json.loads(exc.read())["message"])
        except (ValueError, KeyError, TypeError):
            message = f"the local stack at {stack.url} answered {exc.code}: is it this version's `callvault dev`?"
        raise UserError(message, status=1) from None
    except OSError:  # refused, reset: nothing listens there
        to_duckdb(args.query)  # a bad query is told as such, stack or not
        raise not_running(stack, stack.url) from None


# Athena.


@dataclass(frozen=True)
class Workgroup:
    name: str
    database: str


def stack_workgroup(stack: str) -> Workgroup:
    """The workgroup and database a deployed stack's outputs name."""
    import boto3

    described = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    if "AnalyticsWorkGroupName" not in outputs:
        raise UserError(f"stack {stack} has no AnalyticsWorkGroupName output: deploy this version of callvault first")
    return Workgroup(outputs["AnalyticsWorkGroupName"], outputs["AnalyticsDatabaseName"])


_ATHENA_TYPES: dict[str, Callable[[str], Any]] = {
    "boolean": lambda v: v == "true",
    "tinyint": int,
    "smallint": int,
    "integer": int,
    "bigint": int,
    "double": float,
    "float": float,
    "real": float,
    "decimal": Decimal,
}


def run_athena(sql: str, workgroup: Workgroup, *, poll_seconds: float = 0.5, client: Any = None) -> Result:
    """The query's result from Athena: started in the workgroup (its result location and cutoff),
    waited for, every page read. The query text is sent as written (Athena's own dialect)."""
    import boto3

    athena = client or boto3.client("athena")
    started = athena.start_query_execution(
        QueryString=sql, WorkGroup=workgroup.name, QueryExecutionContext={"Database": workgroup.database}
    )
    query_id = started["QueryExecutionId"]
    wait = poll_seconds
    while True:
        status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        if status["State"] == "SUCCEEDED":
            break
        if status["State"] in ("FAILED", "CANCELLED"):
            reason = status.get("StateChangeReason") or status["State"].lower()
            raise UserError(f"bad query: {_first_line(Exception(reason))}", status=1)
        time.sleep(wait)  # Athena says when it is done only when asked
        wait = min(wait * 1.5, 5.0)
    columns: list[str] = []
    rows: list[tuple[Any, ...]] = []
    header_skipped = False
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
        info = page["ResultSet"].get("ResultSetMetadata", {}).get("ColumnInfo", [])
        columns = columns or [c["Name"] for c in info]
        kinds = [c.get("Type", "varchar") for c in info]
        for row in page["ResultSet"].get("Rows", []):
            values = [cell.get("VarCharValue") for cell in row.get("Data", [])]
            if not header_skipped:  # a SELECT's first row repeats the column names
                header_skipped = True
                if values == columns:
                    continue
            rows.append(tuple(None if v is None else _ATHENA_TYPES.get(k, str)(v) for v, k in zip(values, kinds, strict=False)))
    return Result(columns, rows)


# Output.


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):  # as Athena prints a timestamp
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return float(value)
    return _text(value)


def render(result: Result, style: str) -> Iterator[str]:
    """The result's lines in `style`: an aligned table, CSV with a header, or one JSON object per row."""
    if style == "json":
        for row in result.rows:
            yield json.dumps({c: _json_value(v) for c, v in zip(result.columns, row, strict=True)}, ensure_ascii=False)
    elif style == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([_text(v) for v in row] for row in result.rows)
        yield from buffer.getvalue().splitlines()
    else:
        cells = [[_text(v).replace("\n", " ") for v in row] for row in result.rows]
        widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(result.columns)]
        yield "  ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True)).rstrip()
        yield "  ".join("-" * w for w in widths)
        for row_cells in cells:
            yield "  ".join(v.ljust(w) for v, w in zip(row_cells, widths, strict=True)).rstrip()
        yield f"({len(cells)} row{'s' if len(cells) != 1 else ''})"


def run(args: Any, out: Any = None) -> int:
    out = out or sys.stdout
    if args.workgroup or args.stack:
        workgroup = stack_workgroup(args.stack) if args.stack else Workgroup(args.workgroup, args.database)
        for line in render(run_athena(args.query, workgroup), args.format):
            print(line, file=out)
    else:
        ask_local_stack(args, out)
    return 0


def rows_of(result: Result) -> list[dict[str, Any]]:
    """The result as one dict per row (tests, bench)."""
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


__all__: Sequence[str] = (
    "Mirror",
    "download_dataset",
    "local_reply",
    "open_dataset",
    "render",
    "run",
    "run_athena",
    "tables_read",
    "to_duckdb",
)
