"""One session read back whole: the transcript, read back from the raw body that carried it, comes back in full."""

from __future__ import annotations

import json
from typing import Any

from callvault.vendors import cozmox
from callvault_local.dev import LocalApi
from tests.conftest import Stored, payload, post_webhook

API = LocalApi()


def get(path: str) -> tuple[int, dict[str, Any]]:
    reply = API.handle("GET", path, {}, b"", "127.0.0.1")
    return reply.status, json.loads(reply.body)


def test_transcript_round_trips_from_the_raw_body(stored: Stored) -> None:
    body = payload("cozmox/end-of-call-report")
    turns = body["message"]["artifact"]["messages"]
    body["message"]["artifact"]["messages"] = turns * 40
    response = post_webhook("cozmox", "server-messages", body)
    assert response.status == 200
    session_id = response.json["session_id"]
    assert stored.session("cozmox", session_id)["transcript"]["raw"].startswith("raw/cozmox/server-messages/")

    status, session = get(f"/sessions/cozmox/{session_id}")
    assert status == 200
    parsed = cozmox.ADAPTER.parse("server-messages", body, {}).read_update()
    assert parsed is not None and parsed.transcript is not None
    turns_as_stored: list[dict[str, Any]] = [dict(t) for t in parsed.transcript]
    expected = [
        {
            "role": t["role"],
            "text": t.get("text"),
            "at": t.get("at"),
            "seconds": t.get("seconds"),
            "tool": None
            if t.get("tool") is None
            else {"name": None, "arguments": None, "output": None, "is_error": False, **t["tool"]},
        }
        for t in turns_as_stored
    ]
    assert session["transcript"] == expected and len(expected) > 100
    assert {turn["seconds"] for turn in session["transcript"]} >= {0.0, 1.0, 4.0}  # the vendor's secondsFromStart


def test_transcript_unreadable_is_503_not_500(stored: Stored) -> None:
    body = payload("cozmox/end-of-call-report")
    body["message"]["artifact"]["messages"] *= 40
    session_id = post_webhook("cozmox", "server-messages", body).json["session_id"]
    key = stored.session("cozmox", session_id)["transcript"]["raw"]
    import boto3

    boto3.client("s3").delete_object(Bucket=stored.bucket, Key=key)
    status, reply = get(f"/sessions/cozmox/{session_id}")
    assert status == 503 and reply == {"error": "storage unavailable, retry later"}
    # As in AWS: without s3:ListBucket the read of the missing key is a 403 (the same 503 here).
    from callvault_local import deployed

    assert {(r.function, r.action) for r in deployed.take_refusals()} == {("SessionsReadFunction", "s3:ListBucket")}


def test_values_past_their_inline_bound_are_read_from_the_raw_body(stored: Stored) -> None:
    body = payload("cozmox/end-of-call-report")
    summary = "The caller asked about every plan. " * 200  # ~7 KB: past the inline bound
    structured = {"plans": [f"plan {n}: details" for n in range(200)]}
    body["message"]["analysis"]["summary"] = summary
    body["message"]["analysis"]["structuredData"] = structured
    response = post_webhook("cozmox", "server-messages", body)
    session_id = response.json["session_id"]
    item = stored.session("cozmox", session_id)
    (event,) = stored.events("cozmox", session_id)
    reference = {"raw": event["raw_s3_uri"].split("/", 3)[3]}
    assert item["summary"] == reference and item["vf:structured_data"] == reference
    assert json.loads(item["vf:success_evaluation"]) == "true"  # small: inline
    assert len(json.dumps(item, default=str)) < 2048

    status, session = get(f"/sessions/cozmox/{session_id}")
    assert status == 200
    assert session["summary"] == summary and session["vendor_fields"]["structured_data"] == structured
    status, page = get("/sessions?vendor=cozmox")
    assert status == 200
    (listed,) = page["items"]
    assert listed["summary"] == summary and listed["vendor_fields"]["structured_data"] == structured
