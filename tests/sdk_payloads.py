"""Retell and ElevenLabs webhook bodies built from the vendors' own SDK types (`retell-sdk`,
`elevenlabs`), so that their shape is the vendor's, not our reading of it.

The samples in `events/payloads/retell/` and `events/payloads/elevenlabs/` are these bodies
(tests/integration/test_sdk_payloads.py keeps them equal); regenerate them with
`uv run python -m tests.sdk_payloads`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from elevenlabs.types.conversation_history_analysis_common_model import ConversationHistoryAnalysisCommonModel
from elevenlabs.types.conversation_history_metadata_common_model import ConversationHistoryMetadataCommonModel
from elevenlabs.types.conversation_history_metadata_common_model_phone_call import (
    ConversationHistoryMetadataCommonModelPhoneCall_Twilio,
)
from elevenlabs.types.conversation_history_transcript_other_tools_result_common_model import (
    ConversationHistoryTranscriptOtherToolsResultCommonModel,
)
from elevenlabs.types.conversation_history_transcript_response_model import ConversationHistoryTranscriptResponseModel
from elevenlabs.types.conversation_history_transcript_tool_call_common_model_output import (
    ConversationHistoryTranscriptToolCallCommonModelOutput,
)
from elevenlabs.types.get_conversation_response_model import GetConversationResponseModel
from retell.types.phone_call_response import (
    CallAnalysis,
    CallCost,
    CallCostProductCost,
    Latency,
    LatencyE2E,
    PhoneCallResponse,
    TranscriptObject,
    TranscriptObjectWord,
    TranscriptWithToolCall,
    TranscriptWithToolCallToolCallInvocationUtterance,
    TranscriptWithToolCallToolCallResultUtterance,
    TranscriptWithToolCallUtterance,
    TranscriptWithToolCallUtteranceWord,
)

from tests.conftest import PAYLOADS

RETELL_CALL_ID = "call_8a3f2e1b9c4d7e6f5a0b1c2d3e"
RETELL_START_MS = 1_795_425_302_000  # 2026-11-23T09:15:02Z
RETELL_END_MS = RETELL_START_MS + 74_500
# A signed link as Retell's CloudFront gives, on the local stack's sample audio (sample_audio.py).
RETELL_RECORDING = (
    "http://127.0.0.1:3000/local/sample-audio/call_8a3f2e1b9c4d7e6f5a0b1c2d3e/recording.wav"
    "?Expires=1795511776&Signature=abc123&Key-Pair-Id=K2JQ"
)
ELEVENLABS_CONVERSATION_ID = "conv_01jx9z3k7m2q8r5t4v6w8y0a1b"
ELEVENLABS_START = 1_795_425_400
AGENT = "agent_7f2b9c1d4e"


def _words(text: str, start: float) -> list[TranscriptWithToolCallUtteranceWord]:
    return [
        TranscriptWithToolCallUtteranceWord(word=word, start=start + 0.3 * i, end=start + 0.3 * i + 0.25)
        for i, word in enumerate(text.split())
    ]


E2E = [780.0, 910.0, 1350.0]
_TURNS = [
    ("agent", "Thanks for calling Lee Dental, how can I help?", 0.4),
    ("user", "I need to move my cleaning to Friday.", 4.1),
    ("agent", "Friday at ten thirty works. You're booked.", 12.6),
]


def retell_call(call_status: str = "ended", *, analyzed: bool = False, ended: bool = True) -> dict[str, Any]:
    """A Retell phone call as its SDK's `PhoneCallResponse` describes it, at some point of its life."""
    with_tools: list[TranscriptWithToolCall] = [
        TranscriptWithToolCallUtterance(role=r, content=t, words=_words(t, s)) for r, t, s in _TURNS[:2]
    ]
    with_tools += [
        TranscriptWithToolCallToolCallInvocationUtterance(
            role="tool_call_invocation", tool_call_id="tc_1", name="reschedule", arguments='{"day":"friday"}'
        ),
        TranscriptWithToolCallToolCallResultUtterance(
            role="tool_call_result", tool_call_id="tc_1", content='{"ok":true}', successful=True
        ),
        TranscriptWithToolCallUtterance(role="agent", content=_TURNS[2][1], words=_words(_TURNS[2][1], _TURNS[2][2])),
    ]
    words = [[TranscriptObjectWord(**w.model_dump()) for w in _words(t, s)] for _, t, s in _TURNS]
    call = PhoneCallResponse(
        call_id=RETELL_CALL_ID,
        call_type="phone_call",
        agent_id="agent_5c1d9e2f7a3b",
        agent_name="Front desk",
        agent_version=3,
        call_status=call_status,
        direction="inbound",
        from_number="+14155550123",
        to_number="+14155550199",
        start_timestamp=RETELL_START_MS,
        end_timestamp=RETELL_END_MS if ended else None,
        duration_ms=74_500 if ended else None,
        disconnection_reason="user_hangup" if ended else None,
        recording_url=RETELL_RECORDING if ended else None,
        opt_in_signed_url=True,
        transcript="\n".join(f"{'Agent' if r == 'agent' else 'User'}: {t}" for r, t, _ in _TURNS),
        transcript_object=[TranscriptObject(role=r, content=t, words=w) for (r, t, _), w in zip(_TURNS, words, strict=True)],
        transcript_with_tool_calls=with_tools,
        # End-to-end latency (ms) at each turn change, as Retell reports it with the ended call.
        latency=Latency(e2e=LatencyE2E(p50=910.0, p90=1262.0, p95=1306.0, p99=1341.2, min=780.0, max=1350.0, num=3, values=E2E))
        if ended
        else None,
        call_cost=CallCost(
            combined_cost=12.5,
            product_costs=[
                CallCostProductCost(product="retell_platform", cost=8.5),
                CallCostProductCost(product="gpt-4o", cost=4.0),
            ],
            total_duration_seconds=74.5,
            total_duration_unit_price=0.1678,
        )
        if ended
        else None,
        call_analysis=CallAnalysis(
            call_summary="The caller moved a cleaning to Friday 10:30.",
            user_sentiment="Positive",
            call_successful=True,
            in_voicemail=False,
        )
        if analyzed
        else None,
    )
    return call.model_dump(mode="json", exclude_none=True)


def retell_event(event: str) -> dict[str, Any]:
    """A Retell webhook body, `{"event", "call"}`, for each event the route stores."""
    if event == "call_started":
        call = retell_call("ongoing", ended=False)
        call.pop("transcript_object"), call.pop("transcript_with_tool_calls"), call.pop("transcript")
        return {"event": event, "call": call}
    if event == "transcript_updated":
        return {"event": event, "call": retell_call("ongoing", ended=False)}
    if event.startswith("transfer_"):
        return {"event": event, "call": retell_call("ongoing", ended=False), "transfer_destination": "+14155550111"}
    return {"event": event, "call": retell_call("ended", analyzed=event == "call_analyzed")}


def elevenlabs_conversation() -> dict[str, Any]:
    """An ElevenLabs conversation as its SDK's `GetConversationResponseModel` describes it (the
    `data` of `post_call_transcription`)."""
    transcript = [
        ConversationHistoryTranscriptResponseModel(
            role="agent", message="Hi, this is Lee Dental. How can I help?", time_in_call_secs=0, interrupted=True
        ),
        ConversationHistoryTranscriptResponseModel(
            role="agent",
            message=None,
            time_in_call_secs=9,
            tool_calls=[
                ConversationHistoryTranscriptToolCallCommonModelOutput(
                    request_id="req_1", tool_name="reschedule", params_as_json='{"day":"friday"}', tool_has_been_called=True
                )
            ],
            tool_results=[
                ConversationHistoryTranscriptOtherToolsResultCommonModel(
                    request_id="req_1",
                    tool_name="reschedule",
                    result_value='{"ok":true}',
                    is_error=False,
                    tool_has_been_called=True,
                )
            ],
        ),
        ConversationHistoryTranscriptResponseModel(role="user", message="Can I move my cleaning to Friday?", time_in_call_secs=4),
        ConversationHistoryTranscriptResponseModel(
            role="agent", message="Done: Friday at 10:30.", time_in_call_secs=12, interrupted=False
        ),
    ]
    transcript[1], transcript[2] = transcript[2], transcript[1]
    conversation = GetConversationResponseModel(
        agent_id=AGENT,
        agent_name="Front desk",
        conversation_id=ELEVENLABS_CONVERSATION_ID,
        status="done",
        user_id="patient-4411",
        transcript=transcript,
        metadata=ConversationHistoryMetadataCommonModel(
            start_time_unix_secs=ELEVENLABS_START,
            call_duration_secs=63,
            cost=412,
            cost_fiat=0.0945,
            termination_reason="Call ended by remote party",
            main_language="en",
            phone_call=ConversationHistoryMetadataCommonModelPhoneCall_Twilio(
                direction="outbound",
                phone_number_id="pn_31f0",
                agent_number="+14155550199",
                external_number="+14155550123",
                stream_sid="MZ18ad3ab5a668481ce02b83e7395059f0",
                call_sid="CA1234567890abcdef1234567890abcdef",
            ),
        ),
        analysis=ConversationHistoryAnalysisCommonModel(
            call_successful="success",
            transcript_summary="The patient moved a cleaning to Friday 10:30.",
            call_summary_title="Reschedule",
        ),
        has_audio=True,
        has_user_audio=True,
        has_response_audio=True,
        has_auxiliary_audio=False,
    )
    return conversation.model_dump(mode="json", exclude_none=True)


# A few real MPEG-1 Layer III frames (32 kbit/s, 8 kHz would not be MPEG-1: 44.1 kHz, silence).
MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + (b"\xff\xfb\x10\x64" + b"\x00" * 100) * 40


def elevenlabs_event(event_type: str, audio: bytes = MP3) -> dict[str, Any]:
    """An ElevenLabs post-call webhook body, `{"type", "event_timestamp", "data"}`."""
    stamp = ELEVENLABS_START + 70
    if event_type == "post_call_transcription":
        return {"type": event_type, "event_timestamp": stamp, "data": elevenlabs_conversation()}
    if event_type == "post_call_audio":
        full_audio = base64.b64encode(audio).decode()
        audio_data = {"agent_id": AGENT, "conversation_id": ELEVENLABS_CONVERSATION_ID, "full_audio": full_audio}
        return {"type": event_type, "event_timestamp": stamp, "data": audio_data}
    failure = {"type": "twilio", "body": {"CallSid": "CA99", "CallStatus": "busy", "To": "+14155550177", "From": "+14155550199"}}
    data = {"agent_id": AGENT, "conversation_id": "conv_01jxfail0000000000000000", "failure_reason": "busy", "metadata": failure}
    return {"type": event_type, "event_timestamp": stamp, "data": data}


RETELL_SAMPLES = ("call_started", "transcript_updated", "transfer_started", "call_ended", "call_analyzed")
ELEVENLABS_SAMPLES = ("post_call_transcription", "post_call_audio", "call_initiation_failure")


def samples() -> dict[str, dict[str, Any]]:
    """The sample files' names (under events/payloads/) and bodies."""
    return {
        **{f"retell/{event.replace('_', '-')}": retell_event(event) for event in RETELL_SAMPLES},
        **{f"elevenlabs/{event.replace('_', '-')}": elevenlabs_event(event) for event in ELEVENLABS_SAMPLES},
    }


def write_samples() -> None:
    for name, body in samples().items():
        path = PAYLOADS / f"{name}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(body, indent=2) + "\n")


if __name__ == "__main__":
    write_samples()
