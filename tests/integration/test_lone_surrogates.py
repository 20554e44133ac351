"""A body whose JSON carries a lone surrogate (`"\\ud83d"`: valid JSON, as a vendor in JavaScript
sends a string cut mid-emoji) is filed like any other: stored, archived byte for byte, read back
with U+FFFD in the surrogate's place. It used to answer 500 and keep nothing (the idempotency key's
canonical JSON could not be encoded), so the event was lost for good."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from callvault_local.dev import LocalApi
from tests.conftest import PAYLOADS, Stored, payload_path, post_webhook
from tests.integration.test_read_unchanged import webhook_of

API = LocalApi()
CUT_EMOJI = "\ud83d"  # the first half of 😀's UTF-16 pair, alone
LONE = re.compile("[\ud800-\udfff]")


def _with_cut_emoji(value: Any) -> Any:
    """`value` with a lone surrogate after every text (a string with a space: not an id, a time or a URL)."""
    if isinstance(value, dict):
        return {key: _with_cut_emoji(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_cut_emoji(item) for item in value]
    return value + CUT_EMOJI if isinstance(value, str) and " " in value else value


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in [key, *_strings(item)]]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [value] if isinstance(value, str) else []


def _has_text(path: Path) -> bool:
    return any(" " in s for s in _strings(json.loads(path.read_bytes())))


# Every sample that carries a text to cut (some carry only ids and times).
SAMPLES = [(path.parent.name, f"{path.parent.name}/{path.stem}") for path in sorted(PAYLOADS.glob("*/*.json")) if _has_text(path)]


@pytest.mark.parametrize(("vendor", "name"), SAMPLES, ids=[name for _, name in SAMPLES])
def test_a_lone_surrogate_costs_nothing(stored: Stored, vendor: str, name: str) -> None:
    sent = _with_cut_emoji(json.loads(payload_path(name).read_bytes()))
    body = json.dumps(sent).encode()  # ASCII: the surrogate as its `\ud83d` escape
    assert b"\\ud83d" in body

    reply = post_webhook(vendor, webhook_of(vendor, name.split("/")[-1]), body)

    assert reply.status == 200, reply.json
    assert reply.json["status"] in ("stored", "ignored")
    raw = [key for key in stored.keys("raw/") if key.endswith(f"/{reply.json['event_id']}.json")]
    assert [stored.body(key) for key in raw] == [body]  # byte for byte
    # Nothing the table holds carries a surrogate: DynamoDB takes only well-formed strings.
    assert not [s for item in stored.items() for s in _strings(item) if LONE.search(s)]
    if reply.json["status"] == "stored":
        answer = API.handle("GET", f"/sessions/{vendor}/{reply.json['session_id']}", {}, b"", "127.0.0.1")
        assert answer.status == 200
        text = answer.body.decode("utf-8") if isinstance(answer.body, bytes) else str(answer.body)
        assert [s for s in _strings(json.loads(text)) if "\ufffd" in s]
        assert not LONE.search(text)


def test_a_lone_surrogate_in_a_key_and_nested_past_the_fast_parser(stored: Stored) -> None:
    # Past pydantic-core's nesting limit the standard library parses; keys are mended too.
    sent = json.loads(payload_path("cozmox/end-of-call-report").read_bytes())
    deep: Any = "bottom"
    for _ in range(300):
        deep = {"level": deep}
    sent["message"]["analysis"]["structuredData"] = {f"note{CUT_EMOJI}": deep}
    body = json.dumps(sent).encode()

    reply = post_webhook("cozmox", "server-messages", body)

    assert (reply.status, reply.json["status"]) == (200, "stored")
    assert not [s for item in stored.items() for s in _strings(item) if LONE.search(s)]
