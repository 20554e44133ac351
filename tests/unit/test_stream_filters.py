"""The recording copier's stream filters, read from template.yaml and matched as Lambda event
filtering matches them: only a session becoming pending triggers it, never the copier's own writes."""

from __future__ import annotations

from typing import Any

import pytest

from callvault_local.streams import StreamFunction, _checked, matches, stream_functions


@pytest.fixture(scope="module")
def copier() -> StreamFunction:
    (function,) = [f for f in stream_functions() if f.name == "RecordingsArchiveFunction"]
    return function


def _session(state: str | None, **extra: str) -> dict[str, Any]:
    image: dict[str, Any] = {"pk": {"S": "speaknode#c1"}, "sk": {"S": "SESSION"}, "vendor": {"S": "speaknode"}}
    if state is not None:
        image["recording_state"] = {"S": state}
        image["recording_source_url"] = {"S": "https://media.example/c1.wav"}
    image.update({name: {"S": value} for name, value in extra.items()})
    return image


def _record(event: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    dynamodb: dict[str, Any] = {"Keys": {"pk": {"S": "speaknode#c1"}, "sk": {"S": "SESSION"}}, "SequenceNumber": "1"}
    if old is not None:
        dynamodb["OldImage"] = old
    if new is not None:
        dynamodb["NewImage"] = new
    return {"eventName": event, "dynamodb": dynamodb}


@pytest.mark.parametrize(
    ("why", "record"),
    [
        ("a new session with a recording", _record("INSERT", None, _session("pending"))),
        ("a session gains a recording", _record("MODIFY", _session(None), _session("pending"))),
        ("set back to pending by hand", _record("MODIFY", _session("failed"), _session("pending"))),
    ],
)
def test_a_session_becoming_pending_triggers_the_copier(copier: StreamFunction, why: str, record: dict[str, Any]) -> None:
    assert copier.accepts(record), why


@pytest.mark.parametrize(
    ("why", "record"),
    [
        ("the copier's claim", _record("MODIFY", _session("pending"), _session("pending", recording_claim="c"))),
        ("the copier's release", _record("MODIFY", _session("pending", recording_claim="c"), _session("pending"))),
        ("the copier's outcome", _record("MODIFY", _session("pending"), _session("archived"))),
        ("a later event on a pending session", _record("MODIFY", _session("pending"), _session("pending", status="ended"))),
        ("a session without a recording", _record("INSERT", None, _session(None))),
        ("an event item", _record("INSERT", None, {**_session("pending"), "sk": {"S": "EVENT#e1"}})),
        ("a removal", _record("REMOVE", _session("pending"), None)),
    ],
)
def test_nothing_else_triggers_it(copier: StreamFunction, why: str, record: dict[str, Any]) -> None:
    assert not copier.accepts(record), why


def test_exists_and_anything_but_follow_lambda_event_filtering() -> None:
    absent = {"a": [{"exists": False}]}
    assert matches(absent, {}) and matches(absent, {"b": 1}) and not matches(absent, {"a": "x"})
    assert matches({"p": {"a": [{"exists": False}]}}, {})  # a missing parent: the leaf is missing too
    assert not matches({"a": [{"exists": True}]}, {"a": {"S": "x"}})  # exists tests leaves only, not objects
    assert matches({"a": [{"exists": True}]}, {"a": "x"})
    other = {"a": [{"anything-but": ["pending"]}]}
    assert matches(other, {"a": "failed"}) and not matches(other, {"a": "pending"})
    assert not matches(other, {})  # anything-but needs the field
    assert matches({"a": ["x", {"exists": False}]}, {}) and matches({"a": ["x", {"exists": False}]}, {"a": "x"})
    assert not matches({"a": [1]}, {"a": "1"})  # a number matches a number only


@pytest.mark.parametrize("operator", [{"prefix": "x"}, {"numeric": [">", 1]}, {"anything-but": {"prefix": "x"}}])
def test_an_operator_not_implemented_locally_is_refused_at_load(operator: dict[str, Any]) -> None:
    with pytest.raises(NotImplementedError):
        _checked({"dynamodb": {"NewImage": {"a": {"S": [operator]}}}})
