"""Exactly once: duplicates, concurrent copies, out-of-order delivery, retries after a crash."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

import pytest

from callvault import auth, store
from callvault.ingest import webhook_handler
from callvault.vendors import voiceos
from callvault_local.apigw import LambdaContext, http_event
from tests.conftest import PAYLOADS, Stored, payload, post_webhook


def test_same_event_twice_is_stored_once(stored: Stored) -> None:
    raw = (PAYLOADS / "cozmox/end-of-call-report.json").read_bytes()
    first = post_webhook("cozmox", "server-messages", raw)
    again = post_webhook("cozmox", "server-messages", raw)
    assert first.json["status"] == "stored"
    assert again.status == 200 and again.json["status"] == "duplicate"
    assert again.json["event_id"] == first.json["event_id"]
    assert len(stored.events("cozmox", first.json["session_id"])) == 1
    assert stored.session("cozmox", first.json["session_id"])["event_count"] == 1
    assert len(stored.keys("raw/")) == 1  # one object, one version


def test_reformatted_retry_is_the_same_event(stored: Stored) -> None:
    body = payload("speaknode/conversation-complete")
    first = post_webhook("speaknode", "conversation-complete", json.dumps(body).encode())
    # Same JSON, other whitespace and escaping: still the same event.
    again = post_webhook("speaknode", "conversation-complete", json.dumps(body, indent=4, ensure_ascii=True).encode())
    assert again.json == {**first.json, "status": "duplicate"}


def test_standard_webhooks_id_is_the_idempotency_key(stored: Stored) -> None:
    body = payload("voiceos/conversation-started")
    first = post_webhook("voiceos", "events", body, {"webhook-id": "msg_2Xb9"})
    body["data"]["messages"].append({"role": "user", "content": "hello?"})  # a re-rendered retry
    again = post_webhook("voiceos", "events", body, {"webhook-id": "msg_2Xb9"})
    assert first.json["event_id"] == "msg_2Xb9" and again.json["status"] == "duplicate"


def test_a_vendor_signing_with_standard_webhooks(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any vendor can take the Standard Webhooks verifier into its scheme; its signed webhook-id
    is then the idempotency key, so a retry (new timestamp, new signature) is a duplicate."""
    secret = "whsec_" + base64.b64encode(b"a-vendor-standard-webhooks-key-1").decode()
    monkeypatch.setenv("CALLVAULT_SECRET_VOICEOS", secret)
    adapter = dataclasses.replace(
        voiceos.ADAPTER, auth_scheme=lambda config: (auth.standard_webhooks(config.hmac_tolerance_seconds),)
    )
    handler = webhook_handler(adapter, "events")
    body = (PAYLOADS / "voiceos/conversation-started.json").read_bytes()

    def send(headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        reply = handler(http_event("POST", "/webhooks/voiceos/events", body, headers), LambdaContext())
        return reply["statusCode"], json.loads(reply["body"])

    signed = auth.standard_webhooks_headers(body, secret)
    status, first = send(signed)
    assert (status, first["status"], first["event_id"]) == (200, "stored", signed["webhook-id"])
    retry = auth.standard_webhooks_headers(body, secret, clock=lambda: time.time() + 60)
    assert retry["webhook-signature"] != signed["webhook-signature"]
    status, again = send(retry)
    assert (status, again["status"], again["event_id"]) == (200, "duplicate", first["event_id"])
    forged = {**signed, "webhook-signature": "v1," + base64.b64encode(bytes(32)).decode()}
    assert send(forged)[0] == 401
    assert len(stored.keys("raw/")) == 1


def test_twenty_concurrent_copies_store_once(stored: Stored) -> None:
    raw = (PAYLOADS / "agentsessions/session-completed.json").read_bytes()
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: post_webhook("agentsessions", "session-completed", raw), range(20)))
    statuses = sorted(r.json["status"] for r in responses)
    assert all(r.status == 200 for r in responses)
    assert statuses == ["duplicate"] * 19 + ["stored"]
    session_id = responses[0].json["session_id"]
    assert len(stored.events("agentsessions", session_id)) == 1
    assert stored.session("agentsessions", session_id)["event_count"] == 1
    assert len(stored.keys("raw/")) == 1


def test_late_start_fills_gaps_but_never_reopens(stored: Stored) -> None:
    ended = payload("speaknode/conversation-complete")
    started = payload("speaknode/session-started")
    started["data"]["agent_name"] = "Front desk (renamed)"
    ended["data"]["agent_name"] = None
    ended["data"]["agent_id"] = None
    post_webhook("speaknode", "conversation-complete", ended)
    post_webhook("speaknode", "session-started", started)
    session = stored.session("speaknode", ended["data"]["session_id"])
    assert session["status"] == "ended" and session["status_rank"] == 4
    assert json.loads(session["agent"])["name"] == "Front desk (renamed)"  # a gap, filled
    assert len(stored.transcript(session)) == 6  # not replaced by the start's empty history
    assert session["event_count"] == 2


def test_cozmox_events_in_reverse_order(stored: Stored) -> None:
    names = [
        "status-update-ringing",
        "status-update-in-progress",
        "conversation-update",
        "status-update-ended",
        "end-of-call-report",
    ]
    for name in reversed(names):
        post_webhook("cozmox", "server-messages", payload(f"cozmox/{name}"))
    session = stored.session("cozmox", payload("cozmox/hang")["message"]["call"]["id"])
    assert session["status"] == "ended"
    assert len(stored.transcript(session)) == 6  # the report's, not the partial update's
    assert session["summary"] and session["event_count"] == 5


def test_status_moves_forward_only(stored: Stored) -> None:
    for status in ("in-progress", "ringing", "queued"):
        body = payload("cozmox/status-update-ringing")
        body["message"]["status"] = status
        post_webhook("cozmox", "server-messages", body)
    assert stored.session("cozmox", body["message"]["call"]["id"])["status"] == "in_progress"


def test_crash_between_archive_and_table_converges_on_retry(stored: Stored) -> None:
    raw = (PAYLOADS / "speaknode/conversation-complete.json").read_bytes()
    with mock.patch.object(store, "record_event", side_effect=SystemExit("killed")), contextlib.suppress(SystemExit):
        post_webhook("speaknode", "conversation-complete", raw)
    assert len(stored.keys("raw/")) == 1 and stored.items() == []  # archived, not recorded
    retry = post_webhook("speaknode", "conversation-complete", raw)
    assert retry.json["status"] == "stored"  # the archive's 412 is not mistaken for a duplicate
    assert len(stored.keys("raw/")) == 1
    assert len(stored.events("speaknode", retry.json["session_id"])) == 1


def test_long_transcript_stays_in_its_raw_body(stored: Stored) -> None:
    body = payload("cozmox/end-of-call-report")
    turn = {"role": "user", "message": "I would like to hear about every plan you offer, in detail. " * 4, "time": 1795172406000}
    body["message"]["artifact"]["messages"] = [turn] * 4000  # ~1 MB of transcript
    response = post_webhook("cozmox", "server-messages", body)
    assert response.status == 200 and response.json["status"] == "stored"
    session = stored.session("cozmox", response.json["session_id"])
    (event,) = stored.events("cozmox", response.json["session_id"])
    # The item points at the raw body that holds the transcript: written once, in S3, never copied.
    assert session["transcript"] == {"raw": event["raw_s3_uri"].split("/", 3)[3]}
    assert session["transcript_turns"] == 4000
    assert len(json.dumps(session, default=str)) < 2048
    assert stored.keys("sessions/") == []
    transcript = stored.transcript(session)
    assert len(transcript) == 4000 and transcript[0]["text"] == turn["message"]
    again = post_webhook("cozmox", "server-messages", body)
    assert again.json["status"] == "duplicate"
    assert len(stored.keys("raw/")) == 1


def test_a_shorter_snapshot_never_replaces_a_longer_one(stored: Stored) -> None:
    """Snapshots arrive out of order, and the status does not decide: two conversation-updates
    (both in progress), the longer first."""
    short, long = payload("cozmox/conversation-update"), payload("cozmox/conversation-update")
    long["message"]["messages"] *= 3
    long["message"]["timestamp"] += 1
    call_id = long["message"]["call"]["id"]
    assert post_webhook("cozmox", "server-messages", long).json["status"] == "stored"
    assert post_webhook("cozmox", "server-messages", short).json["status"] == "stored"
    session = stored.session("cozmox", call_id)
    assert session["transcript_turns"] == 9 and len(stored.transcript(session)) == 9
    assert session["event_count"] == 2
    # One as long replaces it (a report repeating the last snapshot carries the summary too).
    same = payload("cozmox/conversation-update")
    same["message"]["messages"] *= 3
    same["message"]["timestamp"] += 2
    same_id = post_webhook("cozmox", "server-messages", same).json["event_id"]
    (event,) = [e for e in stored.events("cozmox", call_id) if e["event_id"] == same_id]
    assert event["raw_s3_uri"].endswith("/" + stored.session("cozmox", call_id)["transcript"]["raw"])


def test_late_longer_snapshot_moves_the_transcript_but_not_the_status(stored: Stored) -> None:
    report = payload("cozmox/end-of-call-report")
    update = payload("cozmox/conversation-update")
    update["message"]["messages"] *= 4  # 12 turns: longer than the report's 6
    call_id = report["message"]["call"]["id"]
    post_webhook("cozmox", "server-messages", report)
    post_webhook("cozmox", "server-messages", update)
    session = stored.session("cozmox", call_id)
    assert session["status"] == "ended" and session["summary"]  # the report's, kept
    assert session["transcript_turns"] == 12 and len(stored.transcript(session)) == 12
