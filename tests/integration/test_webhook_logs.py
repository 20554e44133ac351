"""What a webhook invocation logs and emits (DESIGN.md's observability): the request's id as the
correlation id, the event's keys, and its metrics, with nothing of one invocation left on the next."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

from callvault.observability import logger
from callvault_local.apigw import LambdaContext, http_event
from tests.conftest import SECRETS, Stored, adapter_for, handler_for, payload_path


def _post(request_id: str | None) -> dict[str, Any]:
    raw = payload_path("cozmox/end-of-call-report").read_bytes()
    headers = {"content-type": "application/json", **adapter_for("cozmox").sign(raw, SECRETS["cozmox"])}
    path = "/webhooks/cozmox/server-messages"
    event = http_event("POST", path, raw, headers)
    if request_id is None:
        del event["requestContext"]
    else:
        event["requestContext"]["requestId"] = request_id
    return handler_for(path)(event, LambdaContext())


def _logged(request_id: str | None) -> list[dict[str, Any]]:
    """The JSON lines one invocation writes: its log lines and its metrics (EMF, printed)."""
    out = io.StringIO()
    handler = logger.registered_handler
    stream = handler.setStream(out)  # type: ignore[attr-defined]
    try:
        with contextlib.redirect_stdout(out):
            assert _post(request_id)["statusCode"] == 200
    finally:
        handler.setStream(stream)  # type: ignore[attr-defined]
    return [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]


def test_a_webhook_logs_its_request_id_and_keys_and_emits_its_metrics(stored: Stored) -> None:
    first = _logged("req-first")
    second = _logged(None)  # a duplicate, from an event without a request context

    recorded = next(line for line in first if line.get("message") == "event recorded")
    assert recorded["correlation_id"] == "req-first"
    assert {"vendor": "cozmox", "webhook": "server-messages", "outcome": "stored"}.items() <= recorded.items()
    assert {"event_id", "session_id", "event_type", "function_request_id"} <= recorded.keys()
    emitted = next(line for line in first if "_aws" in line)
    assert emitted["EventsReceived"] == [1.0] and emitted["EventsStored"] == [1.0] and emitted["vendor"] == "cozmox"

    duplicate = next(line for line in second if line.get("message") == "event recorded")
    assert duplicate["outcome"] == "duplicate" and duplicate.get("correlation_id") is None  # not the first's
    assert next(line for line in second if "_aws" in line)["EventsDuplicate"] == [1.0]
