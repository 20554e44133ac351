"""Calls to show in the call browser: cozmox end-of-call reports, signed as cozmox signs them, sent
to a running local stack (tests and bench)."""

from __future__ import annotations

import copy
import json
import urllib.request
from typing import Any

from callvault.vendors import cozmox
from tests.conftest import payload

WORDS = ["Could you move my booking", "Of course, which day suits you", "Friday evening, about seven", "Done: Friday at 7pm"]


def report(
    session_id: str,
    *,
    recording_url: str | None,
    turns: int = 6,
    seconds_apart: float = 1.5,
    speaking: float | None = None,
    **call: Any,
) -> dict[str, Any]:
    """An end-of-call report of `session_id` with `turns` spoken turns (and one tool call), each
    `seconds_apart` into the call after the one before and, with `speaking`, lasting that many
    seconds (the talk time of its metrics)."""
    body = copy.deepcopy(payload("cozmox/end-of-call-report"))
    message = body["message"]
    message["call"]["id"] = session_id
    messages: list[dict[str, Any]] = []
    start_ms = 1795172400000
    for index in range(turns):
        offset = round(index * seconds_apart, 3)
        role = "bot" if index % 2 == 0 else "user"
        at = start_ms + offset * 1000
        said = f"{WORDS[index % len(WORDS)]} ({index + 1})"
        messages.append({"role": role, "message": said, "time": at, "secondsFromStart": offset})
        if speaking is not None:
            messages[-1]["endTime"] = at + speaking * 1000
        if index == 2:
            call_ = {"name": "reschedule", "arguments": '{"day":"friday","time":"19:00"}'}
            tool = {"id": "tc_1", "type": "function", "function": call_}
            messages.append({"role": "tool_calls", "time": at + 200, "secondsFromStart": offset + 0.2, "toolCalls": [tool]})
            result = {"role": "tool_call_result", "name": "reschedule", "result": '{"ok":true}'}
            messages.append(result | {"time": at + 400, "secondsFromStart": offset + 0.4})
    message["artifact"]["messages"] = messages
    recording: dict[str, Any] = {"mono": {"combinedUrl": recording_url}} if recording_url else {}
    message["artifact"]["recording"] = recording
    for key in ("recordingUrl", "stereoRecordingUrl"):
        message["artifact"].pop(key, None)
    message["call"].update(call)
    return body


def send(api_url: str, body: dict[str, Any], vendor: str = "cozmox", secret: str | None = None) -> dict[str, Any]:
    """POST a Vapi-format server message (cozmox or vapi) to the local stack, signed with `secret`
    (default: make dev's for that vendor, `dev-<vendor>-secret`); its JSON answer."""
    raw = json.dumps(body).encode()
    headers = {"content-type": "application/json", **cozmox.ADAPTER.sign(raw, secret or f"dev-{vendor}-secret")}
    request = urllib.request.Request(f"{api_url}/webhooks/{vendor}/server-messages", raw, headers)
    with urllib.request.urlopen(request, timeout=30) as reply:
        answer: dict[str, Any] = json.loads(reply.read())
    return answer
