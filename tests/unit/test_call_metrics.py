"""Per-call metrics (interruptions, turn latency, talk time per side) read from each vendor's own
payload shapes: the SDKs' types where the vendor has one, its documents' samples otherwise; null
where the vendor does not say."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from vapi.types import BotMessage, PerformanceMetrics, SystemMessage, TurnLatency, UserMessage

from callvault.models import CallMetrics
from callvault.vendors import agentsessions, cozmox, elevenlabs, retell, speaknode, vapi, voiceos
from callvault.vendors.base import percentile
from tests.conftest import payload
from tests.sdk_payloads import E2E, retell_event

START_MS = 1_795_172_402_000.0


def _metrics(adapter: Any, webhook: str, body: dict[str, Any]) -> CallMetrics | None:
    update = adapter.parse(webhook, body, {}).update
    assert update is not None
    metrics: CallMetrics | None = update.metrics
    return metrics


def _sdk(model: Any) -> Any:
    return json.loads(model.json())  # the SDK's own wire form (aliases, no unset fields)


def _vapi_report(performance: PerformanceMetrics | None, messages: list[Any]) -> dict[str, Any]:
    body = copy.deepcopy(payload("vapi/end-of-call-report"))
    artifact = body["message"]["artifact"]
    artifact["messages"] = [_sdk(m) for m in messages]
    artifact.pop("performanceMetrics", None)
    if performance is not None:
        artifact["performanceMetrics"] = _sdk(performance)
    return body


def _spoken(kind: Any, role: str, start_s: float, seconds: float) -> Any:
    time, end = START_MS + start_s * 1000, START_MS + (start_s + seconds) * 1000
    return kind(role=role, message="...", time=time, end_time=end, seconds_from_start=start_s, duration=seconds * 1000)


VAPI_MESSAGES = [
    SystemMessage(role="system", message="You are the front desk.", time=START_MS, seconds_from_start=0),
    _spoken(BotMessage, "bot", 1.0, 2.5),
    _spoken(UserMessage, "user", 4.0, 3.0),
    _spoken(BotMessage, "bot", 8.0, 4.25),
    _spoken(UserMessage, "user", 13.0, 1.5),
]


@pytest.mark.parametrize("adapter", [vapi.ADAPTER, cozmox.ADAPTER], ids=["vapi", "cozmox"])
def test_vapi_format_report_latency_percentiles_interruptions_and_talk_time(adapter: Any) -> None:
    turns = [1000.0, 700.0, 2000.0, 900.0, 800.0]
    performance = PerformanceMetrics(
        turn_latencies=[TurnLatency(model_latency=t / 2, voice_latency=t / 4, turn_latency=t) for t in turns],
        turn_latency_average=sum(turns) / len(turns),
        num_assistant_interrupted=2,
        num_user_interrupted=1,
    )
    metrics = _metrics(adapter, "server-messages", _vapi_report(performance, VAPI_MESSAGES))
    assert metrics == CallMetrics(
        interruptions=2,  # the assistant interrupted by the user, not the other way round
        latency_p50_ms=900.0,
        latency_p90_ms=1600.0,  # linear between the 4th (1000) and 5th (2000) of five
        agent_talk_seconds=6.75,
        customer_talk_seconds=4.5,
    )
    assert not metrics.partial


def test_vapi_report_without_performance_metrics_is_partial() -> None:
    metrics = _metrics(vapi.ADAPTER, "server-messages", _vapi_report(None, VAPI_MESSAGES))
    assert metrics is not None and metrics.partial
    assert (metrics.interruptions, metrics.latency_p50_ms, metrics.latency_p90_ms) == (None, None, None)
    assert (metrics.agent_talk_seconds, metrics.customer_talk_seconds) == (6.75, 4.5)


def test_vapi_metrics_only_from_the_end_of_call_report() -> None:
    for name in ("vapi/status-update-in-progress", "cozmox/conversation-update", "cozmox/hang"):
        assert _metrics(vapi.ADAPTER, "server-messages", payload(name)) is None, name


def test_vapi_report_with_nothing_to_say_has_no_metrics() -> None:
    silent = [SystemMessage(role="system", message="You are the front desk.", time=START_MS, seconds_from_start=0)]
    assert _metrics(vapi.ADAPTER, "server-messages", _vapi_report(None, silent)) is None


def test_vapi_values_of_the_wrong_type_cost_only_themselves() -> None:
    body = _vapi_report(PerformanceMetrics(num_assistant_interrupted=1), VAPI_MESSAGES)
    artifact = body["message"]["artifact"]
    artifact["performanceMetrics"]["turnLatencies"] = [{"turnLatency": "fast"}, "x", {"turnLatency": True}, {"turnLatency": 640}]
    artifact["messages"][1]["endTime"] = "later"
    metrics = _metrics(vapi.ADAPTER, "server-messages", body)
    assert metrics is not None
    assert (metrics.interruptions, metrics.latency_p50_ms, metrics.latency_p90_ms) == (1, 640.0, 640.0)
    assert (metrics.agent_talk_seconds, metrics.customer_talk_seconds) == (4.25, 4.5)


def _retell_talk(call: dict[str, Any]) -> tuple[float, float]:
    sides = {"agent": 0.0, "user": 0.0}
    for utterance in call["transcript_object"]:
        words = utterance["words"]
        sides[utterance["role"]] += words[-1]["end"] - words[0]["start"]
    return round(sides["agent"], 3), round(sides["user"], 3)


@pytest.mark.parametrize("event", ["call_ended", "call_analyzed"])
def test_retell_ended_call_e2e_latency_and_talk_time(event: str) -> None:
    body = retell_event(event)
    metrics = _metrics(retell.ADAPTER, "events", body)
    agent_talk, customer_talk = _retell_talk(body["call"])
    assert metrics == CallMetrics(
        latency_p50_ms=body["call"]["latency"]["e2e"]["p50"],
        latency_p90_ms=body["call"]["latency"]["e2e"]["p90"],
        agent_talk_seconds=agent_talk,
        customer_talk_seconds=customer_talk,
    )
    assert metrics.interruptions is None and not metrics.partial  # Retell's call does not count interruptions
    assert metrics.latency_p50_ms == percentile(E2E, 0.5)


@pytest.mark.parametrize("role", [[], {}, None, 7])
def test_retell_utterance_whose_role_is_not_text_costs_only_its_talk_time(role: Any) -> None:
    body = retell_event("call_ended")
    body["call"]["transcript_object"][0]["role"] = role
    metrics = _metrics(retell.ADAPTER, "events", body)  # no TypeError: the event is stored, not quarantined
    assert metrics is not None and metrics.latency_p50_ms == body["call"]["latency"]["e2e"]["p50"]


def test_retell_metrics_only_once_the_call_ended() -> None:
    for event in ("call_started", "transcript_updated", "transfer_started"):
        assert _metrics(retell.ADAPTER, "events", retell_event(event)) is None, event


def test_retell_call_without_latency_is_partial() -> None:
    body = retell_event("call_ended")
    del body["call"]["latency"]
    metrics = _metrics(retell.ADAPTER, "events", body)
    assert metrics is not None and metrics.partial and metrics.latency_p50_ms is None
    assert metrics.agent_talk_seconds == _retell_talk(body["call"])[0]


def test_elevenlabs_interruptions_from_agent_turns_marked_interrupted() -> None:
    body = payload("elevenlabs/post-call-transcription")
    marked = [t.get("interrupted") for t in body["data"]["transcript"] if t["role"] == "agent"]
    assert True in marked  # the SDK-built sample has one
    metrics = _metrics(elevenlabs.ADAPTER, "post-call", body)
    assert metrics == CallMetrics(interruptions=marked.count(True))
    assert metrics.latency_p50_ms is None and metrics.agent_talk_seconds is None  # not in its payload


def test_elevenlabs_transcript_that_does_not_say_has_no_metrics() -> None:
    body = copy.deepcopy(payload("elevenlabs/post-call-transcription"))
    for turn in body["data"]["transcript"]:
        turn.pop("interrupted", None)
    assert _metrics(elevenlabs.ADAPTER, "post-call", body) is None
    assert _metrics(elevenlabs.ADAPTER, "post-call", payload("elevenlabs/post-call-audio")) is None


def test_elevenlabs_pulled_conversation_gives_the_same_metrics() -> None:
    body = payload("elevenlabs/post-call-transcription")
    pulled = elevenlabs.parse_conversation(body["data"]).update
    assert pulled is not None and pulled.metrics == _metrics(elevenlabs.ADAPTER, "post-call", body)


def test_speaknode_interruptions_and_talk_time_from_its_history() -> None:
    body = payload("speaknode/conversation-complete")
    metrics = _metrics(speaknode.ADAPTER, "conversation-complete", body)
    # Agent turns h2 (2.5 s) and h5 (2.2 s, interrupted); the user's h3 (2.4 s) and h6 (1.8 s).
    assert metrics == CallMetrics(interruptions=1, agent_talk_seconds=4.7, customer_talk_seconds=4.2)
    assert not metrics.partial


def test_speaknode_session_started_has_no_metrics() -> None:
    assert _metrics(speaknode.ADAPTER, "session-started", payload("speaknode/session-started")) is None


@pytest.mark.parametrize(
    ("adapter", "webhook", "name"),
    [
        (agentsessions.ADAPTER, "session-completed", "agentsessions/session-completed"),
        (voiceos.ADAPTER, "events", "voiceos/conversation-ended"),
    ],
)
def test_vendors_whose_payloads_carry_no_metrics(adapter: Any, webhook: str, name: str) -> None:
    assert _metrics(adapter, webhook, payload(name)) is None


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [([], 0.5, None), ([5.0], 0.9, 5.0), ([1.0, 2.0], 0.5, 1.5), ([4.0, 1.0, 3.0, 2.0], 0.9, 3.7)],
)
def test_percentile_is_linear_between_ranks(values: list[float], fraction: float, expected: float | None) -> None:
    assert percentile(values, fraction) == expected


def test_a_report_is_partial_only_for_metrics_its_vendor_reports() -> None:
    assert not CallMetrics(interruptions=0).partial  # a vendor that reports interruptions only
    assert CallMetrics(interruptions=0, latency_p50_ms=None).partial
    assert CallMetrics.model_validate({"interruptions": 3}).model_dump(exclude_none=True) == {"interruptions": 3}


def test_speaknode_turns_with_unreadable_times_are_left_out_of_talk_time() -> None:
    body = copy.deepcopy(payload("speaknode/conversation-complete"))
    history = {turn["id"]: turn for turn in body["data"]["history"]}
    history["h2"]["metrics"]["started_speaking_at"] = "soon"
    history["h3"]["metrics"]["stopped_speaking_at"] = "2026-11-20T09:15:09.300"  # no zone, beside one with a zone
    history["h6"]["metrics"]["stopped_speaking_at"] = "2026-11-20T09:15:10Z"  # before it began
    metrics = _metrics(speaknode.ADAPTER, "conversation-complete", body)
    assert metrics == CallMetrics(interruptions=1, agent_talk_seconds=2.2, customer_talk_seconds=None)
    assert metrics.partial  # a metric speaknode reports, not in this report
