"""How soon a webhook's call is visible to `callvault sql` locally (DESIGN.md "SQL over calls":
within 5 seconds of its 200), and where that time goes.

    make bench        (or: uv run python -m bench.sql_freshness [--calls 5])

`callvault dev` runs in its own process on free ports, as `make dev` starts it. For each call:
a Retell `call_analyzed` webhook with a call id of its own, then, from its 200:
1. the seconds until its Parquet file is in moto's S3 (the stream poll, the session-changes
   function's batch): listed in-process every 20 ms;
2. the seconds until `callvault sql "SELECT ... WHERE session_id = ..."` (the real CLI, a
   process, as a user runs it) prints its row, asked again as soon as an answer comes back empty.
Against the floor measured in the same run: `callvault sql "SELECT 1"`, and the same query once
the row is there. Then where the time goes: the CLI process (Python's start, its own imports),
the stack's answer (its log's time for `POST /local/sql`: bringing its copy of the files up to
date, DuckDB), the imports the stack pays once and the CLI no longer does (each in a process
of its own), listing and reading the dataset's files from moto, and what compiling every module
from source adds (PYTHONDONTWRITEBYTECODE with no bytecode installed, as an environment that sets
it and an install without `--compile-bytecode` would run).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/callvault"), str(ROOT / "src")]

from callvault_local.offline import isolate  # noqa: E402

isolate("bench", POWERTOOLS_LOG_LEVEL="ERROR")

CONTRACT_SECONDS = 5.0
CLI = Path(sys.executable).with_name("callvault")  # the console script `make install` puts beside the venv's python


def _timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env or dict(os.environ), capture_output=True, text=True, check=True)  # noqa: S603 - our own CLI
    return time.perf_counter() - started, done.stdout


def cli(*argv: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    """`callvault ARGV` as a user runs it: its wall time and output."""
    return _timed([str(CLI), *argv], env)


def import_seconds(statement: str, env: dict[str, str] | None = None) -> float:
    """The median time of `statement` in a fresh Python (its own time, measured inside)."""
    probe = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    return statistics.median(float(_timed([sys.executable, "-c", probe], env)[1]) for _ in range(3))


def drained(stack: Any) -> list[str]:
    """The stack's log lines not read yet."""
    return [stack.lines.get_nowait() for _ in range(stack.lines.qsize())]


def retell_call(call_id: str) -> bytes:
    from tests.conftest import payload

    body = copy.deepcopy(payload("retell/call-analyzed"))
    body["call"]["call_id"] = call_id
    return json.dumps(body).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()

    import httpx

    from callvault import analytics
    from tests.conftest import adapter_for
    from tests.e2e.conftest import started_stack

    with started_stack() as stack:
        api_port = stack.url.rsplit(":", 1)[1]
        s3, bucket = stack.client("s3"), "callvault-archive"
        prefix = analytics.table_prefix(analytics.SESSION_VERSIONS)

        def keys() -> set[str]:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            return {o["Key"] for page in pages for o in page.get("Contents", [])}

        def send(call_id: str) -> float:
            body = retell_call(call_id)
            headers = {"content-type": "application/json", **adapter_for("retell").sign(body, "dev-retell-secret")}
            answered = httpx.post(f"{stack.url}/webhooks/retell/events", content=body, headers=headers, timeout=30)
            assert answered.status_code == 200, answered.text
            return time.perf_counter()

        floor = statistics.median(cli("sql", "SELECT 1 AS one", "--port", api_port)[0] for _ in range(3))
        to_file: list[float] = []
        to_row: list[float] = []
        runs: list[int] = []
        steady: list[float] = []
        for n in range(args.calls):
            # 1. The pipeline alone: 200 -> the file in S3.
            before = keys()
            sent = send(f"call_freshness_file_{n}_{uuid.uuid4().hex[:8]}")
            while keys() == before:
                assert time.perf_counter() - sent < 120, "no file came"
                time.sleep(0.02)
            to_file.append(time.perf_counter() - sent)
            # 2. As a user sees it: 200 -> the row printed by `callvault sql`.
            call_id = f"call_freshness_row_{n}_{uuid.uuid4().hex[:8]}"
            query = f"SELECT session_id, status, day FROM sessions WHERE session_id = '{call_id}'"
            sent = send(call_id)
            tries = 0
            while True:
                tries += 1
                _, out = cli("sql", query, "--port", api_port, "--format", "csv")
                if call_id in out:
                    break
                assert time.perf_counter() - sent < 120, "the row never came"
            to_row.append(time.perf_counter() - sent)
            runs.append(tries)
            steady.append(cli("sql", query, "--port", api_port, "--format", "csv")[0])

        print(f"`callvault sql` freshness over {args.calls} calls (local stack, this machine's load: {os.getloadavg()[0]:.1f})")
        print(
            f"  webhook 200 -> its file in S3: median {statistics.median(to_file):.2f} s, max {max(to_file):.2f} s"
            " (stream poll every 0.5 s, the session-changes function's batch through DuckDB)"
        )
        print(
            f"  webhook 200 -> its row printed by `callvault sql`: median {statistics.median(to_row):.2f} s, max {max(to_row):.2f} s"
            f" ({statistics.median(runs):.0f} CLI runs median; each call: {', '.join(f'{t:.1f}' for t in to_row)} s);"
            f" contract {CONTRACT_SECONDS:.0f} s:"
            f" {'met' if max(to_row) <= CONTRACT_SECONDS else 'NOT met'}, margin {CONTRACT_SECONDS - max(to_row):.2f} s"
        )
        print(
            f'  floor `callvault sql "SELECT 1"`: {floor:.2f} s; the row\'s query once it is there: {statistics.median(steady):.2f} s'
        )
        print(f"    worst-case arithmetic: file {max(to_file):.2f} s + a run that just missed it + a run that finds it")

        # Where it goes.
        answers = [float(m.group(1)) for m in map(re.compile(r"^POST /local/sql 200 ([0-9.]+) ms").match, drained(stack)) if m]
        print("where it goes (each import in a fresh process, median of 3):")
        start = import_seconds("pass")
        print(f"  python start: {_timed([sys.executable, '-c', 'pass'])[0]:.2f} s (process)")
        print(
            f"  the CLI's own imports (callvault_local.cli, .sql): {import_seconds('import callvault_local.cli, callvault_local.sql') - start:.2f} s"
        )
        print(
            f"  the stack's answer to POST /local/sql (its copy brought up to date, DuckDB): median {statistics.median(answers) / 1000:.2f} s,"
            f" max {max(answers) / 1000:.2f} s over {len(answers)} queries"
        )
        parts = {
            "callvault.analytics (the columns and views)": "import callvault.analytics",
            "sqlglot + its Athena and DuckDB dialects": "import sqlglot; sqlglot.transpile('SELECT 1', read='athena', write='duckdb')",
            "duckdb": "import duckdb",
            "boto3 + an S3 client": "import boto3; boto3.client('s3', region_name='us-east-1')",
        }
        for what, statement in parts.items():
            print(f"  import {what}, once in the stack (each CLI run paid it before): {import_seconds(statement) - start:.2f} s")
        listed_at = time.perf_counter()
        all_keys = sorted(
            o["Key"]
            for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=analytics.PREFIX)
            for o in p.get("Contents", [])
        )
        listed = time.perf_counter() - listed_at
        fetched_at = time.perf_counter()
        size = sum(len(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in all_keys)
        fetched = time.perf_counter() - fetched_at
        print(
            f"  listing the dataset in moto's S3: {listed * 1000:.0f} ms ({len(all_keys)} files); reading them one by one: {fetched * 1000:.0f} ms ({size:,} bytes)"
        )
        with tempfile.TemporaryDirectory() as empty:  # no bytecode anywhere: every module compiled at each run
            cold = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": empty}
            cold_floor = statistics.median(cli("sql", "SELECT 1 AS one", "--port", api_port, env=cold)[0] for _ in range(3))
        print(
            f"  the floor with every module compiled from source at each run (no bytecode installed): {cold_floor:.2f} s (x{cold_floor / floor:.1f})"
        )


if __name__ == "__main__":
    main()
