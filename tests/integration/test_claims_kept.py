"""Claims the rest of the suite did not prove (issue 18): a non-English transcript archived byte
for byte through a vendor that signs its body, and a later event of the same status replacing
the values it carries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from callvault_local.dev import LocalApi
from tests.conftest import Stored, payload, post_webhook

API = LocalApi()
# Spanish, Japanese, Arabic and an emoji: two, three and four bytes to a character in UTF-8.
TURNS = ("¿Puedo mover mi limpieza al viernes?", "金曜日の十時半で予約しました。", "شكرا جزيلا", "👍 ¡Perfecto!")


def _read(vendor: str, session_id: str) -> dict[str, Any]:
    reply = API.handle("GET", f"/sessions/{vendor}/{session_id}", {}, b"", "127.0.0.1")
    assert reply.status == 200, reply
    found: dict[str, Any] = json.loads(reply.body)
    return found


@pytest.mark.parametrize("vendor", ["retell", "elevenlabs"])
def test_a_non_english_transcript_is_archived_byte_for_byte_through_a_signed_vendor(stored: Stored, vendor: str) -> None:
    """The body as sent (UTF-8, not \\u-escaped, an indent the canonical form would not have) is
    the body verified and the body archived: no re-encoding on the way."""
    if vendor == "retell":
        body = payload("retell/call-analyzed")
        body["call"]["call_id"] = session_id = "call_unicode-0001"
        for turns in ("transcript_object", "transcript_with_tool_calls"):
            for turn, text in zip((t for t in body["call"][turns] if "content" in t), TURNS, strict=False):
                turn["content"] = text
        webhook = "events"
    else:
        body = payload("elevenlabs/post-call-transcription")
        body["data"]["conversation_id"] = session_id = "conv_unicode-0001"
        for turn, text in zip(body["data"]["transcript"], TURNS, strict=False):
            turn["message"] = text
        webhook = "post-call"
    raw = json.dumps(body, ensure_ascii=False, indent=1).encode()
    assert not raw.isascii()
    response = post_webhook(vendor, webhook, raw)
    assert response.status == 200 and response.json["status"] == "stored", response

    session = _read(vendor, session_id)
    (event,) = session["events"]
    assert stored.body(event["raw_s3_uri"].split("/", 3)[3]) == raw
    texts = {turn["text"] for turn in session["transcript"]}
    assert len(texts & set(TURNS)) >= 3  # read back as sent, whichever turns carried them


def test_a_later_event_of_the_same_status_replaces_the_values_it_carries(stored: Stored) -> None:
    """Two `end-of-call-report`s of one call (status ended both): the second's corrected cost,
    summary and ended reason replace the first's, as a later event of a further status would."""
    first = payload("cozmox/end-of-call-report")
    session_id = first["message"]["call"]["id"] = "call_corrected-0001"
    assert post_webhook("cozmox", "server-messages", first).json["status"] == "stored"
    before = _read("cozmox", session_id)
    assert before["status"] == "ended" and before["cost"]["total_usd"] == first["message"]["cost"]

    corrected = json.loads(json.dumps(first))
    corrected["message"]["timestamp"] += 60_000  # a distinct event, a minute later
    corrected["message"]["cost"] = 0.0911
    corrected["message"]["analysis"]["summary"] = "Caller booked a table for four at 8pm."
    corrected["message"]["endedReason"] = "assistant-ended-call"
    assert post_webhook("cozmox", "server-messages", corrected).json["status"] == "stored"
    after = _read("cozmox", session_id)
    assert after["status"] == "ended"
    assert after["cost"]["total_usd"] == 0.0911
    assert after["summary"] == "Caller booked a table for four at 8pm."
    assert after["ended_reason"] == "assistant-ended-call" != before["ended_reason"]
