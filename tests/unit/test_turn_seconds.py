"""A turn's `seconds`: its offset into the call (what a player seeks to), where the vendor says it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from callvault.models import offset_seconds
from callvault.vendors import agentsessions, cozmox, elevenlabs, retell, speaknode, vapi, voiceos
from tests.conftest import payload


def _turns(adapter: Any, webhook: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    update = adapter.parse(webhook, body, {}).read_update()  # the turns, as the read API builds them
    assert update is not None and update.transcript
    return [dict(turn) for turn in update.transcript]


def test_vapi_format_turns_carry_seconds_from_start() -> None:
    for adapter, name in ((vapi.ADAPTER, "vapi/end-of-call-report"), (cozmox.ADAPTER, "cozmox/end-of-call-report")):
        body = payload(name)
        messages = body["message"]["artifact"]["messages"]
        said = [m["secondsFromStart"] for m in messages if "secondsFromStart" in m]
        turns = _turns(adapter, "server-messages", body)
        assert said and [t["seconds"] for t in turns if t.get("seconds") is not None] == [float(s) for s in said][: len(turns)]


def test_cozmox_tool_calls_carry_the_offset_of_their_message() -> None:
    turns = _turns(cozmox.ADAPTER, "server-messages", payload("cozmox/end-of-call-report"))
    tools = [t for t in turns if t["role"] == "tool"]
    assert tools and all(t["seconds"] is not None for t in tools)


def test_retell_turns_carry_their_first_word_start() -> None:
    body = payload("retell/call-analyzed")
    spoken = [u for u in body["call"]["transcript_object"] if u.get("words")]
    turns = _turns(retell.ADAPTER, "events", body)
    assert [t["seconds"] for t in turns if t["role"] != "tool"] == [u["words"][0]["start"] for u in spoken]


def test_elevenlabs_turns_carry_time_in_call_secs() -> None:
    body = payload("elevenlabs/post-call-transcription")
    turns = _turns(elevenlabs.ADAPTER, "post-call", body)
    said = [float(t["time_in_call_secs"]) for t in body["data"]["transcript"]]
    assert turns[0]["seconds"] == said[0] and {t["seconds"] for t in turns} <= set(said) and len(set(said)) > 1


@pytest.mark.parametrize(
    ("adapter", "webhook", "name"),
    [
        (agentsessions.ADAPTER, "session-completed", "agentsessions/session-completed"),
        (speaknode.ADAPTER, "conversation-complete", "speaknode/conversation-complete"),
        (voiceos.ADAPTER, "events", "voiceos/conversation-ended"),
    ],
)
def test_vendors_that_give_no_offset_leave_it_null(adapter: Any, webhook: str, name: str) -> None:
    assert all(turn.get("seconds") is None for turn in _turns(adapter, webhook, payload(name)))


def test_a_negative_offset_is_null_and_the_turn_is_kept() -> None:
    body = copy.deepcopy(payload("elevenlabs/post-call-transcription"))
    body["data"]["transcript"][0]["time_in_call_secs"] = -1
    turns = _turns(elevenlabs.ADAPTER, "post-call", body)
    assert turns[0]["seconds"] is None and turns[0]["at"] is None
    assert turns[0]["text"] == body["data"]["transcript"][0]["message"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0.0), (12.5, 12.5), (True, None), ("3", None), (-0.1, None), (float("inf"), None), (float("nan"), None), (None, None)],
)
def test_offset_seconds(value: Any, expected: float | None) -> None:
    assert offset_seconds(value) == expected
