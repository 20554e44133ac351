"""ElevenLabs through its real handler: the transcription normalized, the audio in the body stored as
the session's recording (same fields as a copied one), a call that never connected, and the rest."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError

from callvault import archive, aws, recordings
from callvault.errors import StorageUnavailable
from callvault.vendors.base import EmbeddedRecording
from callvault_local.sample_audio import make_wav
from tests.conftest import Stored, post_webhook
from tests.sdk_payloads import ELEVENLABS_CONVERSATION_ID, MP3, elevenlabs_event

CONVERSATION = ELEVENLABS_CONVERSATION_ID


def test_transcription_normalized(stored: Stored) -> None:
    response = post_webhook("elevenlabs", "post-call", elevenlabs_event("post_call_transcription"))
    assert response.status == 200 and response.json["status"] == "stored", response.json
    session = stored.session("elevenlabs", CONVERSATION)
    assert session["status"] == "ended"
    assert session["channel"] == "outbound_phone"
    assert session["from_number"] == "+14155550199" and session["to_number"] == "+14155550123"  # the agent called out
    assert json.loads(session["agent"]) == {"id": "agent_7f2b9c1d4e", "name": "Front desk"}
    assert session["started_at"] == "2026-11-23T09:16:40.000Z"
    assert session["ended_at"] == "2026-11-23T09:17:43.000Z"
    assert float(session["duration_seconds"]) == 63
    assert session["ended_reason"] == "Call ended by remote party"
    assert json.loads(session["cost"]) == {"total_usd": 0.0945, "breakdown": {"credits": 412}}
    assert session["summary"] == "The patient moved a cleaning to Friday 10:30."
    assert json.loads(session["vf:call_successful"]) == "success"
    assert json.loads(session["vf:call_sid"]) == "CA1234567890abcdef1234567890abcdef"
    # has_audio: the recording is pending at the API's audio URL (a long call's audio webhook is refused)
    assert session["recording_state"] == "pending"
    assert session["recording_source_url"] == f"https://api.elevenlabs.io/v1/convai/conversations/{CONVERSATION}/audio"
    transcript = stored.transcript(session)
    assert [(t["role"], t["at"]) for t in transcript] == [
        ("assistant", "2026-11-23T09:16:40.000Z"),
        ("user", "2026-11-23T09:16:44.000Z"),
        ("tool", "2026-11-23T09:16:49.000Z"),
        ("tool", "2026-11-23T09:16:49.000Z"),
        ("assistant", "2026-11-23T09:16:52.000Z"),
    ]
    assert transcript[2]["tool"] == {"name": "reschedule", "arguments": '{"day":"friday"}', "output": None, "is_error": False}
    assert transcript[3]["tool"] == {"name": "reschedule", "arguments": None, "output": '{"ok":true}', "is_error": False}


def test_audio_in_the_body_becomes_the_sessions_recording(stored: Stored) -> None:
    audio = MP3 * 50  # ~210 KB
    post_webhook("elevenlabs", "post-call", elevenlabs_event("post_call_transcription"))
    response = post_webhook("elevenlabs", "post-call", elevenlabs_event("post_call_audio", audio))
    assert response.json["status"] == "stored"
    session = stored.session("elevenlabs", CONVERSATION)
    assert session["recording_state"] == "archived"
    assert session["recording_bytes"] == len(audio)
    assert session["recording_sha256"] == hashlib.sha256(audio).hexdigest()
    assert session["recording_content_type"] == "audio/mpeg"
    assert session["recording_archived_at"]
    key = session["recording_s3_uri"].split("/", 3)[3]
    assert key.startswith(f"audio/elevenlabs/{CONVERSATION}/") and key.endswith(".mp3")
    assert stored.body(key) == audio
    assert session["summary"]  # the transcription's facts are kept
    (raw_event,) = [e for e in stored.events("elevenlabs", CONVERSATION) if e["type"] == "post_call_audio"]
    raw = json.dumps(elevenlabs_event("post_call_audio", audio)).encode()
    assert stored.body(raw_event["raw_s3_uri"].split("/", 3)[3]) == raw  # the body itself is archived too


def test_audio_retry_is_a_duplicate_and_uploads_nothing_again(stored: Stored) -> None:
    body = json.dumps(elevenlabs_event("post_call_audio")).encode()
    first = post_webhook("elevenlabs", "post-call", body)
    audio_versions = stored.keys("audio/")
    again = post_webhook("elevenlabs", "post-call", body)
    assert (first.json["status"], again.json["status"]) == ("stored", "duplicate")
    assert stored.keys("audio/") == audio_versions  # no second version of the file
    assert stored.session("elevenlabs", CONVERSATION)["event_count"] == 1


def test_audio_larger_than_a_part_streams_in_parts(stored: Stored) -> None:
    audio = make_wav(400.0)  # ~6.4 MB decoded: more than one 5 MB part of the multipart upload
    recording = EmbeddedRecording(base64.b64encode(audio).decode(), "audio/mpeg")
    stored_recording = recordings.store_embedded("elevenlabs", "conv_big", "evt_big", recording)
    assert stored_recording.state == "archived"
    assert stored_recording.bytes == len(audio)
    assert stored_recording.sha256 == hashlib.sha256(audio).hexdigest()
    assert stored_recording.content_type == "audio/wav"  # the bytes say what they are
    key = str(stored_recording.s3_uri).split("/", 3)[3]
    assert stored.body(key) == audio
    head = boto3.client("s3").head_object(Bucket=stored.bucket, Key=key)
    assert head["Metadata"]["sha256"] == stored_recording.sha256
    assert archive.head(key) is not None


def test_audio_that_is_not_base64_is_quarantined(stored: Stored) -> None:
    body = elevenlabs_event("post_call_audio")
    body["data"]["full_audio"] = "not base64!"
    response = post_webhook("elevenlabs", "post-call", body)
    assert response.status == 400 and "base64" in response.json["error"]
    assert stored.keys("quarantine/elevenlabs/post-call/")
    assert not stored.items()


def test_call_initiation_failure_is_a_session_that_never_connected(stored: Stored) -> None:
    body = elevenlabs_event("call_initiation_failure")
    response = post_webhook("elevenlabs", "post-call", body)
    assert response.json["status"] == "stored"
    session = stored.session("elevenlabs", body["data"]["conversation_id"])
    assert (session["status"], session["ended_reason"], session["channel"]) == ("ended", "busy", "outbound_phone")
    assert session["to_number"] == "+14155550177"
    assert "started_at" not in session and "transcript" not in session


def test_other_types_are_acknowledged(stored: Stored) -> None:
    body = {"type": "post_call_something_new", "event_timestamp": 1, "data": {"conversation_id": "conv_x"}}
    assert post_webhook("elevenlabs", "post-call", body).json["status"] == "ignored"
    assert stored.keys("raw/elevenlabs/post-call/") and not stored.items()


def test_wrong_secret_writes_nothing(stored: Stored) -> None:
    response = post_webhook("elevenlabs", "post-call", elevenlabs_event("post_call_audio"), secret="wrong")
    assert response.status == 401
    assert not stored.items() and not stored.keys()


@pytest.mark.parametrize("operation", ["put_object", "list_object_versions"])
def test_audio_upload_failing_is_503_and_the_retry_stores_it_once(stored: Stored, operation: str) -> None:
    audio = MP3 * 100
    body = json.dumps(elevenlabs_event("post_call_audio", audio)).encode()
    client = aws.s3()
    real = getattr(client, operation)

    def fail_on_audio(**kwargs: Any) -> Any:
        if kwargs.get("Key", kwargs.get("Prefix", "")).startswith("audio/"):
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, operation)
        return real(**kwargs)

    with mock.patch.object(client, operation, side_effect=fail_on_audio):
        response = post_webhook("elevenlabs", "post-call", body)
    assert response.status == 503
    # The event is stored (its raw body holds the audio); the recording is not, and the claim is given back.
    session = stored.session("elevenlabs", CONVERSATION)
    assert "recording_state" not in session and "recording_claim" not in session
    assert session["recording_error"].startswith("s3 ") and stored.keys("audio/") == []
    retry = post_webhook("elevenlabs", "post-call", body)
    assert retry.json["status"] == "duplicate"  # the event was stored; the retry finishes its audio
    session = stored.session("elevenlabs", CONVERSATION)
    assert session["recording_state"] == "archived" and "recording_error" not in session
    assert session["recording_sha256"] == hashlib.sha256(audio).hexdigest()
    assert stored.body(session["recording_s3_uri"].split("/", 3)[3]) == audio


def test_a_part_failing_leaves_no_upload_behind(stored: Stored) -> None:
    audio = make_wav(400.0)  # ~6.4 MB: two parts
    recording = EmbeddedRecording(base64.b64encode(audio).decode(), "audio/mpeg")
    error = ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "UploadPart")
    with mock.patch.object(aws.s3(), "upload_part", side_effect=error), pytest.raises(StorageUnavailable):
        recordings.store_embedded("elevenlabs", "conv_big", "evt_big", recording)
    assert stored.keys("audio/") == []
    assert boto3.client("s3").list_multipart_uploads(Bucket=stored.bucket).get("Uploads", []) == []
