"""Per-call metrics through the real webhook handlers: one small attribute on the session item,
merged as cost is (a later fuller report replaces, a lesser one never erases what is known), and
served by the read API's session and listing."""

from __future__ import annotations

import copy
import json
from typing import Any

from callvault_local.dev import LocalApi
from tests.conftest import Stored, payload, post_webhook
from tests.sdk_payloads import RETELL_CALL_ID, retell_event


def _get(target: str) -> dict[str, Any]:
    reply = LocalApi().handle("GET", target, {}, b"", "127.0.0.1")
    assert reply.status == 200, reply.body
    found: dict[str, Any] = json.loads(reply.body)
    return found


def _without_latency(event: str) -> dict[str, Any]:
    body = retell_event(event)
    del body["call"]["latency"]
    return body


def _stored(vendor: str, webhook: str, body: dict[str, Any]) -> None:
    answer = post_webhook(vendor, webhook, body)
    assert answer.status == 200 and answer.json["status"] == "stored", answer.json


def test_the_session_item_holds_the_known_metrics_in_one_small_attribute(stored: Stored) -> None:
    _stored("vapi", "server-messages", payload("vapi/end-of-call-report"))
    session_id = payload("vapi/end-of-call-report")["message"]["call"]["id"]
    item = stored.session("vapi", session_id)
    metrics = json.loads(item["metrics"])
    assert metrics == {
        "interruptions": 1,
        "latency_p50_ms": 1270.0,
        "latency_p90_ms": 1270.0,
        "agent_talk_seconds": 3.0,
        "customer_talk_seconds": 2.0,
    }
    assert len("metrics") + len(item["metrics"].encode()) < 160  # what it adds to every later write of the item


def test_a_fuller_report_replaces_a_lesser_one_never_erases(stored: Stored) -> None:
    _stored("retell", "events", _without_latency("call_ended"))  # talk time only
    first = json.loads(stored.session("retell", RETELL_CALL_ID)["metrics"])
    assert "latency_p50_ms" not in first and first["agent_talk_seconds"] > 0

    _stored("retell", "events", retell_event("call_analyzed"))  # the whole call: latency too
    full = json.loads(stored.session("retell", RETELL_CALL_ID)["metrics"])
    assert full["latency_p50_ms"] == 910.0 and full["latency_p90_ms"] == 1262.0

    late = _without_latency("call_analyzed")  # a later, lesser report of the same call
    late["call"]["transcript_object"] = late["call"]["transcript_object"][:1]
    _stored("retell", "events", late)
    assert json.loads(stored.session("retell", RETELL_CALL_ID)["metrics"]) == full


def test_a_lesser_report_fills_a_session_that_has_none(stored: Stored) -> None:
    body = copy.deepcopy(payload("vapi/end-of-call-report"))
    del body["message"]["artifact"]["performanceMetrics"]
    _stored("vapi", "server-messages", body)
    session_id = body["message"]["call"]["id"]
    assert json.loads(stored.session("vapi", session_id)["metrics"]) == {"agent_talk_seconds": 3.0, "customer_talk_seconds": 2.0}
    _stored("vapi", "server-messages", payload("vapi/end-of-call-report"))
    assert json.loads(stored.session("vapi", session_id)["metrics"])["interruptions"] == 1


def test_events_that_say_nothing_of_metrics_leave_no_attribute(stored: Stored) -> None:
    _stored("retell", "events", retell_event("call_started"))
    assert "metrics" not in stored.session("retell", RETELL_CALL_ID)
    _stored("voiceos", "events", payload("voiceos/conversation-ended"))
    session_id = next(i["session_id"] for i in stored.items() if i["sk"] == "SESSION" and i["vendor"] == "voiceos")
    assert "metrics" not in stored.session("voiceos", session_id)


def test_the_read_api_serves_the_metrics_null_where_the_vendor_does_not_say(stored: Stored) -> None:
    _stored("elevenlabs", "post-call", payload("elevenlabs/post-call-transcription"))
    _stored("voiceos", "events", payload("voiceos/conversation-ended"))
    conversation = payload("elevenlabs/post-call-transcription")["data"]["conversation_id"]
    session = _get(f"/sessions/elevenlabs/{conversation}")
    assert session["metrics"] == {
        "interruptions": 1,
        "latency_p50_ms": None,
        "latency_p90_ms": None,
        "agent_talk_seconds": None,
        "customer_talk_seconds": None,
    }
    listed = {s["vendor"]: s for s in _get("/sessions")["items"]}
    assert listed["elevenlabs"]["metrics"] == session["metrics"]
    assert listed["voiceos"]["metrics"] is None
