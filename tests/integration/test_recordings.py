"""Recordings copied into the archive: a loopback server stands in for the vendor's media host,
serving a real WAV file made here; the table's stream drives the recording function as Lambda would."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from callvault import config, download, recordings, store
from callvault.models import Recording
from callvault_local.dev import LocalApi
from callvault_local.streams import StreamDelivery, deliveries
from tests.conftest import Stored, payload, post_webhook, put_secret
from tests.media import BIG_WAV, WAV, MediaHost, VapiApi
from tests.waiting import wait_until


@pytest.fixture
def recording_timeout_seconds() -> str:
    """The copier (tests/conftest.py) gives a stalling host 3 s here, not the template's minutes."""
    return "3"


def _call_with_recording(url: str, session_id: str, expires_at: str = "2099-01-01T00:00:00Z") -> str:
    body = payload("speaknode/conversation-complete")
    body["data"].update(session_id=session_id, audio_url=url, audio_url_expires_at=expires_at)
    response = post_webhook("speaknode", "conversation-complete", body)
    assert response.status == 200, response
    return session_id


def _recording(stored: Stored, session_id: str) -> dict[str, Any]:
    session = stored.session("speaknode", session_id)
    return {k.removeprefix("recording_"): v for k, v in session.items() if k.startswith("recording_")}


def test_recording_is_copied_with_its_hash_size_and_type(stored: Stored, copier: StreamDelivery, media: MediaHost) -> None:
    session_id = _call_with_recording(f"{media.url}/call.wav?X-Amz-Signature=abc", "rec-ok")
    copier.poll()
    recording = _recording(stored, session_id)
    assert recording["state"] == "archived", recording
    assert recording["bytes"] == len(WAV) and recording["sha256"] == hashlib.sha256(WAV).hexdigest()
    assert recording["content_type"] == "audio/wav" and recording["archived_at"]
    key = recording["s3_uri"].split("/", 3)[3]
    assert key.startswith("audio/speaknode/rec-ok/") and key.endswith(".wav")
    obj = boto3.client("s3").get_object(Bucket=stored.bucket, Key=key)
    assert obj["Body"].read() == WAV and obj["ContentType"] == "audio/wav"
    assert "claim" not in recording and "claim_until" not in recording


def test_large_recording_goes_up_in_parts(stored: Stored, copier: StreamDelivery, media: MediaHost) -> None:
    session_id = _call_with_recording(f"{media.url}/big.wav", "rec-big")
    copier.poll()
    recording = _recording(stored, session_id)
    assert recording["state"] == "archived" and recording["bytes"] == len(BIG_WAV) > 8 * 1024 * 1024
    head = boto3.client("s3").head_object(Bucket=stored.bucket, Key=recording["s3_uri"].split("/", 3)[3])
    assert head["ContentLength"] == len(BIG_WAV) and "-" in head["ETag"]  # a multipart ETag


def test_same_url_in_several_events_is_copied_once(stored: Stored, copier: StreamDelivery, media: MediaHost) -> None:
    url = f"{media.url}/redirect-ok?once"
    before = media.hits["/call.wav"]
    _call_with_recording(url, "rec-once")
    body = payload("speaknode/session-started")
    body["data"]["session_id"] = "rec-once"
    post_webhook("speaknode", "session-started", body)  # a second event on the pending session
    copier.poll()
    _call_with_recording(url, "rec-once", expires_at="2099-01-02T00:00:00Z")  # the same URL again, after the copy
    copier.poll()
    assert media.hits["/call.wav"] - before == 1
    assert _recording(stored, "rec-once")["state"] == "archived"
    assert len(stored.keys("audio/speaknode/rec-once/")) == 1


def test_octet_stream_that_is_audio_is_accepted_by_its_bytes(stored: Stored, copier: StreamDelivery, media: MediaHost) -> None:
    session_id = _call_with_recording(f"{media.url}/octet", "rec-octet")
    copier.poll()
    assert _recording(stored, session_id)["content_type"] == "audio/wav"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/missing.wav", "HTTP 404"),
        ("/page.html", "not audio: text/html"),
        ("/redirect-private", "refused address 10.1.2.3"),
        ("/redirect-metadata", "refused address 169.254.169.254"),
        ("/redirect-loop", "more than 5 redirects"),
    ],
)
def test_permanent_failures_mark_the_recording_failed(
    stored: Stored, copier: StreamDelivery, media: MediaHost, path: str, reason: str
) -> None:
    session_id = _call_with_recording(f"{media.url}{path}", f"rec-fail{path.replace('/', '-')}")
    copier.poll()
    recording = _recording(stored, session_id)
    assert recording["state"] == "failed" and recording["error"].startswith(reason), recording
    assert stored.keys(f"audio/speaknode/{session_id}/") == []
    assert copier.dead_letters == []


def test_expired_link_is_named_expired(stored: Stored, copier: StreamDelivery, media: MediaHost) -> None:
    session_id = _call_with_recording(f"{media.url}/gone.wav", "rec-expired", expires_at="2020-01-01T00:00:00Z")
    copier.poll()
    recording = _recording(stored, session_id)
    assert recording["state"] == "failed" and recording["error"] == "expired: HTTP 403"


def test_oversize_fails_cleanly_and_leaves_nothing(
    stored: Stored, copier: StreamDelivery, media: MediaHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECORDING_MAX_BYTES", str(1024 * 1024))
    config.settings.cache_clear()
    for path, session_id in (("/big.wav", "rec-big-capped"), ("/endless", "rec-endless")):
        _call_with_recording(f"{media.url}{path}", session_id)
        copier.poll()
        recording = _recording(stored, session_id)
        assert recording["state"] == "failed" and recording["error"] == "too large: over 1048576 bytes", recording
        assert stored.keys(f"audio/speaknode/{session_id}/") == []
    uploads = boto3.client("s3").list_multipart_uploads(Bucket=stored.bucket).get("Uploads", [])
    assert uploads == []  # aborted, not left to accrue storage


def test_slow_server_times_out_then_is_retried_then_dead_lettered(
    stored: Stored, copier: StreamDelivery, media: MediaHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECORDING_TIMEOUT_SECONDS", "4")  # the host needs 16 s; its headers come at once
    config.settings.cache_clear()
    copier.function = dataclasses.replace(copier.function, max_retries=1)  # the template says 6: two tries will do here
    session_id = _call_with_recording(f"{media.url}/slow.wav", "rec-slow")
    before = media.hits["/slow.wav"]
    copier.poll()
    recording = _recording(stored, session_id)
    assert recording["state"] == "pending" and "claim" not in recording  # released for a later attempt
    # Each try stopped at its deadline (the host takes 16 s to send the file): two tries, each cut short.
    assert media.hits["/slow.wav"] - before == 2 and recording["attempts"] == 2
    assert recording["error"] == "timed out while copying"
    assert [json.loads(json.dumps(r["dynamodb"]["Keys"])) for r in copier.dead_letters] == [
        {"pk": {"S": store.session_pk("speaknode", session_id)}, "sk": {"S": "SESSION"}}
    ]
    assert stored.keys(f"audio/speaknode/{session_id}/") == []


def test_transient_errors_are_retried_with_backoff(stored: Stored, copier: StreamDelivery, media: MediaHost) -> None:
    session_id = _call_with_recording(f"{media.url}/flaky.wav", "rec-flaky")
    copier.poll()
    assert _recording(stored, session_id)["state"] == "archived"
    assert media.hits["/flaky.wav"] == 3  # two 503s, then the file


def test_loopback_is_refused_unless_allowed(
    stored: Stored, copier: StreamDelivery, media: MediaHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECORDING_ALLOW_LOOPBACK", "false")
    config.settings.cache_clear()
    session_id = _call_with_recording(f"{media.url}/call.wav", "rec-loopback")
    copier.poll()
    recording = _recording(stored, session_id)
    assert recording["state"] == "failed" and recording["error"].startswith("refused scheme http")


def test_failing_recording_is_fetched_a_bounded_number_of_times_while_others_are_copied(
    stored: Stored, media: MediaHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A minute of the stream delivered as `make dev` delivers it (in the background, the
    template's filters and retries) while a host answers 503 to every fetch: the copier's own
    writes trigger nothing, the attempts stop at the bound, and a good recording sent meanwhile
    is copied at once."""
    monkeypatch.setenv("RECORDING_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("RECORDING_TIMEOUT_SECONDS", "10")
    config.settings.cache_clear()
    (delivery,) = deliveries(
        stored.table, only="RecordingsArchiveFunction", backoff_seconds=0.1, log=lambda _: None
    )  # make dev's waits
    attempts = config.settings().recording_max_attempts
    assert attempts == delivery.function.max_retries + 1  # the template's retries, then the bound
    fetches_per_attempt = download.IN_ATTEMPT_RETRIES + 1
    window_ends = time.monotonic() + 60
    poller = threading.Thread(target=delivery.run, args=(0.2,), daemon=True)
    poller.start()
    try:
        _call_with_recording(f"{media.url}/unavailable.wav", "rec-unavailable")
        wait_until(lambda: media.hits["/unavailable.wav"], 30, "the first fetch of the failing recording")
        _call_with_recording(f"{media.url}/call.wav?meanwhile", "rec-meanwhile")
        wait_until(lambda: _recording(stored, "rec-meanwhile")["state"] == "archived", 15, "the good recording archived")

        failed = wait_until(lambda: _recording(stored, "rec-unavailable")["state"] == "failed", 120, "giving up")
        assert failed
        delivery.stopped.wait(max(0.0, window_ends - time.monotonic()))  # the rest of the minute: nothing more may come
    finally:
        delivery.stop()
    recording = _recording(stored, "rec-unavailable")
    assert recording["error"] == f"gave up after {attempts} attempts: HTTP 503", recording
    assert recording["attempts"] == attempts and "claim" not in recording
    assert media.hits["/unavailable.wav"] == attempts * fetches_per_attempt  # 7 x 4 = 28, then never again
    assert delivery.dead_letters == []  # the outcome is on the session, not left for the queue


def test_a_record_delivered_again_after_the_last_attempt_fetches_nothing(
    stored: Stored, copier: StreamDelivery, media: MediaHost
) -> None:
    session_id = _call_with_recording(f"{media.url}/unavailable.wav?again", "rec-spent")
    spent = config.settings().recording_max_attempts
    boto3.client("dynamodb").update_item(  # as if every attempt had been made, the last one cut short (a timeout)
        TableName=stored.table,
        Key={"pk": {"S": store.session_pk("speaknode", session_id)}, "sk": {"S": "SESSION"}},
        UpdateExpression="SET recording_attempts = :spent, recording_error = :last",
        ExpressionAttributeValues={":spent": {"N": str(spent)}, ":last": {"S": "HTTP 503"}},
    )
    before = media.hits["/unavailable.wav"]
    job = recordings.RecordingJob("speaknode", session_id, f"{media.url}/unavailable.wav?again", None)
    assert recordings.copy_recording(job) == "failed"
    assert media.hits["/unavailable.wav"] == before
    recording = _recording(stored, session_id)
    assert recording["state"] == "failed" and recording["error"] == f"gave up after {spent} attempts: HTTP 503"
    assert recording["attempts"] == spent


def test_a_host_that_stalls_mid_body_is_a_transient_failure(stored: Stored, copier: StreamDelivery, media: MediaHost) -> None:
    """Headers, then silence: the read times out, the claim is released for the next attempt
    (not held by an error the copier did not expect)."""
    session_id = _call_with_recording(f"{media.url}/stall.wav", "rec-stalled")
    job = recordings.RecordingJob("speaknode", session_id, f"{media.url}/stall.wav", None)
    assert recordings.copy_recording(job) == "retry"
    recording = _recording(stored, session_id)
    assert recording["state"] == "pending" and "claim" not in recording
    assert recording["error"] == "read failed: ReadTimeoutError"


def test_a_later_link_is_the_one_copied(stored: Stored, copier: StreamDelivery, media: MediaHost) -> None:
    """A session's recording is copied from the URL the session holds when the copy starts (a
    retry after a vendor sent a fresh link fetches the fresh one)."""
    session_id = _call_with_recording(f"{media.url}/unavailable.wav?stale", "rec-relinked")
    job = recordings.RecordingJob("speaknode", session_id, f"{media.url}/unavailable.wav?stale", None)
    assert recordings.copy_recording(job) == "retry"
    assert _recording(stored, session_id)["error"] == "HTTP 503"  # why the last attempt failed, while pending
    _call_with_recording(f"{media.url}/call.wav?fresh", session_id)
    assert recordings.copy_recording(job) == "archived"
    recording = _recording(stored, session_id)
    assert recording["state"] == "archived" and recording["source_url"].endswith("?fresh")
    assert "error" not in recording and recording["attempts"] == 2


def _read_api_recording(session_id: str) -> dict[str, Any]:
    reply = LocalApi().handle("GET", f"/sessions/speaknode/{session_id}", {}, b"", "127.0.0.1")
    assert reply.status == 200, reply
    recording: dict[str, Any] = json.loads(reply.body)["recording"]
    return recording


def test_read_api_answers_every_recording_field_the_copier_wrote(
    stored: Stored, copier: StreamDelivery, media: MediaHost
) -> None:
    """Every field of `Recording`, written by the webhook path and the copier (archived and
    failed), comes back through the read API as DynamoDB holds it."""
    archived = _call_with_recording(f"{media.url}/call.wav", "rec-read-archived")
    failed = _call_with_recording(f"{media.url}/missing.wav", "rec-read-failed")
    copier.poll()
    seen: set[str] = set()
    for session_id in (archived, failed):
        in_table = _recording(stored, session_id)
        answered = _read_api_recording(session_id)
        assert set(answered) == set(Recording.model_fields)
        assert {name: answered[name] for name in in_table} == in_table, session_id
        assert all(answered[name] is None for name in set(answered) - set(in_table))
        seen |= {name for name, value in answered.items() if value is not None}
    assert seen == set(Recording.model_fields)  # every field was written somewhere, and read back


# ---------------------------------------------------------------- Vapi's private storage
VAPI_KEY = "vapi-private-key"


@pytest.fixture
def vapi_api(media: MediaHost, monkeypatch: pytest.MonkeyPatch) -> Iterator[VapiApi]:
    """Vapi's API on loopback, redirecting to the media host's file (its short-lived URL)."""
    api = VapiApi(VAPI_KEY, lambda call_id, kind: f"{media.url}/call.wav?call={call_id}&kind={kind}&X-Amz-Expires=60")
    monkeypatch.setenv("CALLVAULT_API_URL_VAPI", api.url)
    put_secret("vapiapikey", VAPI_KEY)
    yield api
    api.close()


def _vapi_call_with_recording(session_id: str, recording_url: str) -> None:
    body = payload("vapi/end-of-call-report")
    body["message"]["call"]["id"] = session_id
    artifact = body["message"]["artifact"]
    artifact["recording"] = {"mono": {"combinedUrl": recording_url}}
    artifact["recordingUrl"] = artifact["stereoRecordingUrl"] = None
    assert post_webhook("vapi", "server-messages", body).json["status"] == "stored"


@pytest.mark.parametrize("kind", ["mono", "stereo"])
def test_vapi_storage_link_is_fetched_through_the_authenticated_endpoint(
    stored: Stored, copier: StreamDelivery, media: MediaHost, vapi_api: VapiApi, kind: str
) -> None:
    session_id = f"vapi-private-{kind}"
    link = f"https://storage.vapi.ai/{session_id}-1795172414000-5b1e0c2a-{kind}.wav"
    _vapi_call_with_recording(session_id, link)
    copier.poll()
    session = stored.session("vapi", session_id)
    assert session["recording_state"] == "archived", session.get("recording_error")
    assert session["recording_sha256"] == hashlib.sha256(WAV).hexdigest()
    assert session["recording_source_url"] == link  # the session keeps the vendor's link
    assert vapi_api.requests == [(f"/call/{session_id}/{kind}-recording", f"Bearer {VAPI_KEY}")]
    assert media.authorization["/call.wav"] is None  # the key goes to Vapi's API only, never on to the file


def test_the_key_is_not_sent_on_to_a_redirect_even_on_the_same_host(
    stored: Stored, copier: StreamDelivery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials go to the URL asked for only: a redirect, to the API's own host too, goes without them."""
    urls: list[str] = []
    api = VapiApi(VAPI_KEY, lambda call_id, kind: f"{urls[0]}/files/{call_id}.wav")
    urls.append(api.url)
    monkeypatch.setenv("CALLVAULT_API_URL_VAPI", api.url)
    put_secret("vapiapikey", VAPI_KEY)
    try:
        _vapi_call_with_recording("vapi-same-host", "https://storage.vapi.ai/vapi-same-host-1-mono.wav")
        copier.poll()
    finally:
        api.close()
    assert api.requests == [("/call/vapi-same-host/mono-recording", f"Bearer {VAPI_KEY}"), ("/files/vapi-same-host.wav", None)]


def test_vapi_endpoint_refusing_the_key_fails_the_copy(
    stored: Stored, copier: StreamDelivery, vapi_api: VapiApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_secret("vapiapikey", "revoked-key")
    _vapi_call_with_recording("vapi-private-revoked", "https://storage.vapi.ai/vapi-private-revoked-1-mono.wav")
    copier.poll()
    session = stored.session("vapi", "vapi-private-revoked")
    assert (session["recording_state"], session["recording_error"]) == ("failed", "HTTP 401: the vapi API refused the key")


def test_vapi_redirect_to_a_private_address_is_refused(
    stored: Stored, copier: StreamDelivery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SSRF guard checks every hop, the authenticated endpoint's redirect too."""
    api = VapiApi(VAPI_KEY, lambda call_id, kind: "http://10.1.2.3/recording.wav")
    monkeypatch.setenv("CALLVAULT_API_URL_VAPI", api.url)
    put_secret("vapiapikey", VAPI_KEY)
    try:
        _vapi_call_with_recording("vapi-private-ssrf", "https://storage.vapi.ai/vapi-private-ssrf-1-mono.wav")
        copier.poll()
    finally:
        api.close()
    session = stored.session("vapi", "vapi-private-ssrf")
    assert session["recording_state"] == "failed" and "refused address 10.1.2.3" in session["recording_error"]
