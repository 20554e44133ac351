"""The write counts a transcript's turns without building them; the read builds them. Both must
agree on every body: the count the write stores (`transcript_turns`, which guards which snapshot
the session points at) is the length of the transcript the read API gives back."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callvault.vendors import cozmox
from callvault.vendors.base import PayloadError
from tests.conftest import PAYLOADS, ROOT, adapter_for, payload
from tests.integration.test_read_unchanged import SAMPLES, webhook_of

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _both_ways(vendor: str, name: str, body: Any) -> None:
    """The write's parse and the read's agree on `body` (when the write files it at all)."""
    try:
        parsed = adapter_for(vendor).parse(webhook_of(vendor, name.split("/")[-1]), body, {})
    except PayloadError:
        return  # quarantined: nothing is read back
    written = parsed.update
    if written is None:
        return
    assert written.transcript is None  # the write builds no turns
    read = parsed.read_update()
    assert read is not None
    assert read.model_dump(exclude={"transcript"}) == written.model_dump(exclude={"transcript"})
    if written.transcript_turns is None:
        assert read.transcript is None
    else:
        assert read.transcript is not None and len(read.transcript) == written.transcript_turns


@pytest.mark.parametrize(("vendor", "name"), SAMPLES, ids=[name for _, name in SAMPLES])
def test_samples_count_what_the_read_builds(vendor: str, name: str) -> None:
    _both_ways(vendor, name, payload(name))


def test_samples_with_transcripts_count_them() -> None:
    counted = {name: adapter_for(v).parse(webhook_of(v, name.split("/")[-1]), payload(name), {}) for v, name in SAMPLES}
    with_turns = {name for name, parsed in counted.items() if parsed.update and parsed.update.transcript_turns}
    assert len({name.split("/")[0] for name in with_turns}) >= 6  # every vendor's transcript shape, tools among them


@pytest.mark.parametrize(("vendor", "name"), SAMPLES, ids=[name for _, name in SAMPLES])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_value_anywhere_counts_what_the_read_builds(vendor: str, name: str, data: st.DataObject) -> None:
    body: Any = copy.deepcopy(payload(name))
    target = body
    for _ in range(data.draw(st.integers(0, 7))):  # down into lists too: a turn, a tool call
        keys = sorted(target) if isinstance(target, dict) else list(range(len(target)))
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        if not isinstance(target[key], dict | list) or not target[key]:
            break
        target = target[key]
    keys = sorted(target) if isinstance(target, dict) else list(range(len(target)))
    if keys:
        target[data.draw(st.sampled_from(keys))] = data.draw(ANY_JSON)
    _both_ways(vendor, name, body)


@pytest.mark.parametrize(("value", "read_as"), [(7, "7"), (["lookup"], None), ({"n": 1}, None), (None, None)])
def test_a_tool_call_named_oddly_costs_its_name_not_the_event(value: Any, read_as: str | None) -> None:
    # Before, such a name failed the whole event (quarantined): now the write does not look at turns.
    body = json.loads((PAYLOADS / "cozmox/end-of-call-report.json").read_text())
    calls = [m for m in body["message"]["artifact"]["messages"] if m.get("toolCalls")]
    calls[0]["toolCalls"][0]["function"]["name"] = value
    parsed = cozmox.ADAPTER.parse("server-messages", body, {})
    read = parsed.read_update()
    assert read is not None and read.transcript is not None
    tools = [turn.get("tool") for turn in read.transcript if turn["role"] == "tool"]
    assert tools[0] is not None and tools[0].get("name") == read_as
    assert parsed.update is not None and parsed.update.transcript_turns == len(read.transcript)


def test_the_doc_examples_are_among_the_samples() -> None:
    examples = {f"doc-examples/{p.stem}" for p in (ROOT / "tests" / "fixtures" / "doc-examples").glob("*.json")}
    assert examples <= {name for _, name in SAMPLES}


@pytest.mark.parametrize("role", [["user"], {"r": 1}, 7, None])
def test_a_turn_whose_role_is_not_text_is_not_counted_and_costs_nothing_else(role: Any) -> None:
    # A role that cannot be a dict key once failed the report's talk time (the event quarantined).
    body = json.loads((PAYLOADS / "cozmox/end-of-call-report.json").read_text())
    body["message"]["artifact"]["messages"][0]["role"] = role
    parsed = cozmox.ADAPTER.parse("server-messages", body, {})
    untouched = cozmox.ADAPTER.parse("server-messages", payload("cozmox/end-of-call-report"), {})
    read = parsed.read_update()
    assert parsed.update is not None and untouched.update is not None and read is not None and read.transcript is not None
    assert parsed.update.transcript_turns == len(read.transcript) == (untouched.update.transcript_turns or 0) - 1
    assert parsed.update.metrics is not None
