"""One session read back whole: a transcript offloaded to S3 comes back in full."""

from __future__ import annotations

import json
from typing import Any

import pytest

from callvault import config
from callvault.vendors import cozmox
from callvault_local.dev import LocalApi
from tests.conftest import Stored, payload, post_webhook

API = LocalApi()


def get(path: str) -> tuple[int, dict[str, Any]]:
    reply = API.handle("GET", path, {}, b"", "127.0.0.1")
    return reply.status, json.loads(reply.body)


def test_offloaded_transcript_round_trips(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSCRIPT_INLINE_MAX_BYTES", "2000")
    config.settings.cache_clear()
    body = payload("cozmox/end-of-call-report")
    turns = body["message"]["artifact"]["messages"]
    body["message"]["artifact"]["messages"] = turns * 40
    response = post_webhook("cozmox", "server-messages", body)
    assert response.status == 200
    session_id = response.json["session_id"]
    assert stored.session("cozmox", session_id)["transcript"].startswith("s3://")

    status, session = get(f"/sessions/cozmox/{session_id}")
    assert status == 200
    parsed = cozmox.ADAPTER.parse("server-messages", body, {}).update
    assert parsed is not None and parsed.transcript is not None
    turns_as_stored: list[dict[str, Any]] = [dict(t) for t in parsed.transcript]
    expected = [
        {
            "role": t["role"],
            "text": t.get("text"),
            "at": t.get("at"),
            "tool": None
            if t.get("tool") is None
            else {"name": None, "arguments": None, "output": None, "is_error": False, **t["tool"]},
        }
        for t in turns_as_stored
    ]
    assert session["transcript"] == expected and len(expected) > 100


def test_transcript_unreadable_is_503_not_500(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSCRIPT_INLINE_MAX_BYTES", "2000")
    config.settings.cache_clear()
    body = payload("cozmox/end-of-call-report")
    body["message"]["artifact"]["messages"] *= 40
    session_id = post_webhook("cozmox", "server-messages", body).json["session_id"]
    uri = stored.session("cozmox", session_id)["transcript"]
    import boto3

    boto3.client("s3").delete_object(Bucket=stored.bucket, Key=uri.split("/", 3)[3])
    status, reply = get(f"/sessions/cozmox/{session_id}")
    assert status == 503 and reply == {"error": "storage unavailable, retry later"}
