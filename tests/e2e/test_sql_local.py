"""`callvault sql` on `callvault dev` as a user runs them both (processes of their own, free ports):
a webhook's call becomes a row in `sessions`, its day the partition it was written to. How soon is
measured in bench/sql_freshness.py (DESIGN.md: within 5 seconds locally), not asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from datetime import UTC, datetime

from tests.conftest import adapter_for, payload
from tests.e2e.conftest import RunningStack
from tests.waiting import wait_until


def _sql(stack: RunningStack, query: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "callvault_local.cli",
            "sql",
            query,
            "--format",
            "json",
            "--port",
            stack.url.rsplit(":", 1)[1],
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_a_webhooks_call_becomes_a_sessions_row(dev_stack: RunningStack) -> None:
    call_id = f"call_sql_{uuid.uuid4().hex[:12]}"
    body = payload("retell/call-analyzed")
    body["call"]["call_id"] = call_id
    raw = json.dumps(body).encode()
    headers = {"content-type": "application/json", **adapter_for("retell").sign(raw, "dev-retell-secret")}
    request = urllib.request.Request(f"{dev_stack.url}/webhooks/retell/events", data=raw, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200

    query = f"SELECT vendor, session_id, status, day FROM sessions WHERE session_id = '{call_id}'"
    rows = wait_until(lambda: _sql(dev_stack, query), 120, f"{call_id} in `callvault sql`'s sessions")
    started = body["call"]["start_timestamp"] // 1000
    day = datetime.fromtimestamp(started, UTC).date().isoformat()  # the call's listing day: Retell's start time
    assert rows == [{"vendor": "retell", "session_id": call_id, "status": "ended", "day": day}]
