"""`make dev`'s events out, as a user sees them: the bus in moto, `callvault events` printing what
goes on it, and the outbound webhook POSTed to CALLVAULT_NOTIFY_URL, signed."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests.conftest import ROOT, payload
from tests.e2e.conftest import RunningStack, started_stack
from tests.integration.test_events_notify import SECRET, Receiver
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver(statuses=[500])  # the first delivery fails: the dev sender retries it
    yield found
    found.server.shutdown()
    found.server.server_close()


@pytest.fixture(scope="module")
def stack(receiver: Receiver) -> Iterator[RunningStack]:
    command = ["env", f"CALLVAULT_NOTIFY_URL={receiver.url}", f"CALLVAULT_NOTIFY_SECRET={SECRET}"]
    with started_stack(
        [*command, sys.executable, "-m", "callvault_local.cli", "dev", "--port", "0", "--moto-port", "0"]
    ) as running:
        yield running


def _ports(stack: RunningStack) -> list[str]:
    return ["--port", stack.url.rsplit(":", 1)[1], "--moto-port", stack.moto_url.rsplit(":", 1)[1]]


def _end_a_call(stack: RunningStack, call_id: str) -> None:
    body = payload("cozmox/end-of-call-report")
    body["message"]["call"]["id"] = call_id
    request = urllib.request.Request(
        f"{stack.url}/webhooks/cozmox/server-messages",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": "Bearer dev-cozmox-secret"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def test_the_banner_names_the_bus_and_the_webhook_url(stack: RunningStack, receiver: Receiver) -> None:
    assert "bus callvault-events" in stack.banner and "callvault events" in stack.banner
    assert f"Outbound webhooks: POST {receiver.url}" in stack.banner


def test_callvault_events_prints_the_call_ended_and_the_receiver_gets_it_signed(stack: RunningStack, receiver: Receiver) -> None:
    _end_a_call(stack, "call-e2e")
    watched = subprocess.run(
        [sys.executable, "-m", "callvault_local.cli", "events", "--count", "1", *_ports(stack)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert watched.returncode == 0, watched.stderr
    (line,) = watched.stdout.splitlines()
    event: dict[str, Any] = json.loads(line)
    assert (event["detail-type"], event["detail"]["session_id"]) == ("Call Ended", "call-e2e")
    wait_until(lambda: len(receiver.received) >= 2, 120, "the webhook retried, then delivered")
    assert [status for status, _, _ in receiver.received] == [500, 200], stack.lines.queue
    delivered = [Webhook(SECRET).verify(body, headers) for _, headers, body in receiver.received]
    assert delivered[-1] == {"type": "call.ended", "timestamp": event["time"], "data": event["detail"]}


def test_redrive_with_nothing_waiting_says_so(stack: RunningStack) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "callvault_local.cli", "events", "--redrive", *_ports(stack)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "events: 0 webhook(s) sent again from NotifyDeadLetterQueue\n")
