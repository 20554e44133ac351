"""ElevenLabs' long calls keep their audio (DESIGN.md "Long calls' audio"): a transcription (or a
pulled conversation) with `has_audio` makes the recording pending at the API's audio URL, the copier
fetches it with the API key from a loopback fake of the API, and whichever of that and a
`post_call_audio` body comes first is the one recording, in either order and interleaved."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callvault import recordings, store
from callvault.download import DownloadError
from callvault.models import format_utc
from callvault.vendors import elevenlabs
from callvault_local.fake_vendor_apis import FakeVendorApi
from callvault_local.streams import StreamDelivery
from tests.conftest import Stored, post_webhook, put_secret
from tests.sdk_payloads import ELEVENLABS_CONVERSATION_ID, MP3, elevenlabs_event

CONVERSATION = ELEVENLABS_CONVERSATION_ID
KEY = "xi-test-key"
AUDIO_BYTES = 200_000
REFUSED = "the elevenlabs API refused the key"


@pytest.fixture
def api(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVendorApi]:
    """The fake ElevenLabs API on loopback, knowing the sample conversation (ended, with audio);
    its key in the stack's ElevenLabs API key secret, where the functions read it as deployed."""
    with FakeVendorApi("elevenlabs", key=KEY, audio_bytes=AUDIO_BYTES) as fake:
        fake.add(CONVERSATION, datetime.now(UTC) - timedelta(minutes=5))
        monkeypatch.setenv("CALLVAULT_API_URL_ELEVENLABS", fake.url)
        monkeypatch.setenv("CALLVAULT_API_KEY_ELEVENLABS", KEY)
        put_secret("elevenlabsapikey", KEY)
        yield fake


def _transcription(has_audio: Any = True, *, where: str = "data") -> dict[str, Any]:
    body = elevenlabs_event("post_call_transcription")
    del body["data"]["has_audio"]
    (body["data"] if where == "data" else body["data"]["metadata"])["has_audio"] = has_audio
    return body


def _recording(stored: Stored) -> dict[str, Any]:
    session = stored.session("elevenlabs", CONVERSATION)
    return {k.removeprefix("recording_"): v for k, v in session.items() if k.startswith("recording_")}


def _audio_objects(stored: Stored) -> list[str]:
    return stored.keys(f"audio/elevenlabs/{CONVERSATION}/")


def _post(body: dict[str, Any]) -> str:
    response = post_webhook("elevenlabs", "post-call", body)
    assert response.status == 200, response.json
    return str(response.json["status"])


@pytest.mark.parametrize("where", ["data", "metadata"])
def test_has_audio_makes_the_recording_pending_and_the_copier_fetches_it(
    stored: Stored, api: FakeVendorApi, copier: StreamDelivery, where: str
) -> None:
    assert _post(_transcription(where=where)) == "stored"
    assert _recording(stored) == {"state": "pending", "source_url": f"{api.url}/v1/convai/conversations/{CONVERSATION}/audio"}
    copier.poll()
    recording = _recording(stored)
    assert recording["state"] == "archived", recording
    assert recording["bytes"] == AUDIO_BYTES and recording["content_type"] == "audio/mpeg"
    (key,) = _audio_objects(stored)
    assert recording["s3_uri"].endswith(key) and key.endswith(".mp3")
    assert hashlib.sha256(stored.body(key)).hexdigest() == recording["sha256"]
    assert api.requests["recording"] == 1 and api.requests["unauthorized"] == 0  # one request, with the key


@pytest.mark.parametrize("has_audio", [False, None, "no"])
def test_without_has_audio_there_is_nothing_to_fetch(stored: Stored, has_audio: Any) -> None:
    assert _post(_transcription(has_audio)) == "stored"
    assert _recording(stored) == {}


def test_audio_in_the_body_first_is_the_recording_and_the_api_is_not_asked(
    stored: Stored, api: FakeVendorApi, copier: StreamDelivery
) -> None:
    audio = MP3 * 10
    assert _post(elevenlabs_event("post_call_audio", audio)) == "stored"
    assert _post(_transcription()) == "stored"
    copier.poll()
    recording = _recording(stored)
    assert recording["state"] == "archived" and recording["sha256"] == hashlib.sha256(audio).hexdigest()
    assert len(_audio_objects(stored)) == 1 and api.requests["recording"] == 0


def test_pulled_audio_first_is_the_recording_and_the_body_stores_nothing_more(
    stored: Stored, api: FakeVendorApi, copier: StreamDelivery
) -> None:
    assert _post(_transcription()) == "stored"
    copier.poll()
    pulled = _recording(stored)
    assert pulled["state"] == "archived"
    assert _post(elevenlabs_event("post_call_audio", MP3 * 10)) == "stored"  # the event is kept (raw body)
    assert _recording(stored) == pulled and len(_audio_objects(stored)) == 1


def test_body_arriving_while_the_copier_fetches_stores_no_second_object(
    stored: Stored, api: FakeVendorApi, copier: StreamDelivery
) -> None:
    """Interleaved: the copier holds the claim and is mid-download when the audio body arrives."""
    fetching, release = threading.Event(), threading.Event()
    respond = api.respond

    def slow_audio(method: str, target: str, headers: dict[str, str], body: bytes = b"") -> Any:
        if target.endswith("/audio"):
            fetching.set()
            release.wait(30)
        return respond(method, target, headers, body)

    api.respond = slow_audio  # type: ignore[method-assign]
    assert _post(_transcription()) == "stored"
    worker = threading.Thread(target=copier.poll)
    worker.start()
    assert fetching.wait(30)
    assert _post(elevenlabs_event("post_call_audio", MP3 * 10)) == "stored"  # claim lost: nothing uploaded
    assert _audio_objects(stored) == []
    release.set()
    worker.join(30)
    recording = _recording(stored)
    assert recording["state"] == "archived" and recording["bytes"] == AUDIO_BYTES
    assert len(_audio_objects(stored)) == 1


def test_copier_delivered_while_the_body_uploads_fetches_nothing(
    stored: Stored, api: FakeVendorApi, copier: StreamDelivery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interleaved the other way: the body's audio holds the claim while the copier is delivered."""
    assert _post(_transcription()) == "stored"  # pending: the stream holds a job for the copier
    store_embedded = recordings.store_embedded

    delivered: list[threading.Thread] = []

    def copier_meanwhile(*args: Any) -> Any:
        # The copier is delivered while this upload holds the claim (it waits on the claim).
        delivered.append(threading.Thread(target=copier.poll, daemon=True))
        delivered[0].start()
        return store_embedded(*args)

    monkeypatch.setattr(recordings, "store_embedded", copier_meanwhile)
    audio = MP3 * 10
    assert _post(elevenlabs_event("post_call_audio", audio)) == "stored"
    delivered[0].join(600)  # hang protection only
    assert not delivered[0].is_alive()
    copier.poll()
    recording = _recording(stored)
    assert recording["state"] == "archived" and recording["sha256"] == hashlib.sha256(audio).hexdigest()
    assert len(_audio_objects(stored)) == 1 and api.requests["recording"] == 0


def test_racing_claims_have_one_winner(stored: Stored) -> None:
    """The store's claims themselves: a copier's and a body's, in either order, one wins."""
    assert _post(_transcription()) == "stored"
    now = datetime.now(UTC)
    assert store.claim_recording("elevenlabs", CONVERSATION, "copier", now, 360) is not None
    assert not store.claim_embedded_recording("elevenlabs", CONVERSATION, "body", now, 60)
    assert not store.finish_recording("elevenlabs", CONVERSATION, "body", recordings.archived("k", 1, "s", "audio/mpeg"))
    store.release_recording("elevenlabs", CONVERSATION, "copier", "HTTP 503")
    assert store.claim_embedded_recording("elevenlabs", CONVERSATION, "body", now, 60)
    assert store.claim_recording("elevenlabs", CONVERSATION, "copier-2", now, 360) is None


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (404, "HTTP 404"),
        (401, "HTTP 401: the elevenlabs API refused the key"),
        (403, "HTTP 403: the elevenlabs API refused the key"),
    ],
)
def test_audio_the_api_does_not_give_fails_with_its_reason_once(
    stored: Stored, api: FakeVendorApi, copier: StreamDelivery, status: int, reason: str
) -> None:
    api.fail_next(status, kind="recording")
    assert _post(_transcription()) == "stored"
    copier.poll()
    copier.poll()
    recording = _recording(stored)
    assert (recording["state"], recording["error"]) == ("failed", reason)
    assert api.requests[f"fault {status}"] == 1 and api.requests["recording"] == 0  # asked once, not again
    # The body's audio, when it comes after all, is still the recording.
    assert _post(elevenlabs_event("post_call_audio", MP3)) == "stored"
    assert _recording(stored)["state"] == "archived" and len(_audio_objects(stored)) == 1


def test_revoked_key_fails_with_its_reason(
    stored: Stored, api: FakeVendorApi, copier: StreamDelivery, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLVAULT_API_KEY_ELEVENLABS", "revoked")
    put_secret("elevenlabsapikey", "revoked")
    assert _post(_transcription()) == "stored"
    copier.poll()
    assert (_recording(stored)["state"], _recording(stored)["error"]) == (
        "failed",
        "HTTP 401: the elevenlabs API refused the key",
    )
    assert api.requests["unauthorized"] == 1


def test_no_api_key_says_so_and_asks_nothing(
    stored: Stored, api: FakeVendorApi, copier: StreamDelivery, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CALLVAULT_API_KEY_ELEVENLABS")
    put_secret("elevenlabsapikey", "[]")  # as the template creates it: off until the user sets the key
    assert _post(_transcription()) == "stored"
    copier.poll()
    recording = _recording(stored)
    assert recording["state"] == "failed" and recording["error"].startswith("no ElevenLabs API key")
    assert sum(api.requests.values()) == 0


def test_the_key_goes_to_the_configured_api_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLVAULT_API_URL_ELEVENLABS", "https://api.eu.residency.elevenlabs.io/")
    monkeypatch.setenv("CALLVAULT_API_KEY_ELEVENLABS", KEY)
    own = "https://api.eu.residency.elevenlabs.io/v1/convai/conversations/conv%2F1/audio"
    assert elevenlabs.audio_url("conv/1") == own
    assert dict(elevenlabs.recording_fetch("conv/1", own).headers) == {"xi-api-key": KEY}
    for elsewhere in (
        "https://api.elevenlabs.io/v1/convai/conversations/conv%2F1/audio",  # another origin
        "https://api.eu.residency.elevenlabs.io/v1/convai/conversations/conv-2/audio",  # another conversation
        "https://attacker.example/v1/convai/conversations/conv%2F1/audio",
    ):
        assert dict(elevenlabs.recording_fetch("conv/1", elsewhere).headers) == {}
    monkeypatch.delenv("CALLVAULT_API_KEY_ELEVENLABS")
    with pytest.raises(DownloadError) as refused:
        elevenlabs.recording_fetch("conv/1", own)
    assert refused.value.permanent


def test_reconcile_makes_the_same_pending_recording(stored: Stored, api: FakeVendorApi, copier: StreamDelivery) -> None:
    from callvault import reconcile

    api.add("conv-pulled", datetime.now(UTC) - timedelta(minutes=3))
    api.add("conv-silent", datetime.now(UTC) - timedelta(minutes=2), recording=False)
    adapter, reconciler = reconcile.adapter_with_reconciler("elevenlabs")
    client = reconcile.client_for(reconciler, KEY, api.url, allow_loopback=True)
    report = reconcile.run_pass(adapter, reconciler, client, since=format_utc(datetime.now(UTC) - timedelta(hours=1)))
    assert report.stored == 3 and report.ok, report
    pulled = stored.session("elevenlabs", "conv-pulled")
    assert pulled["recording_state"] == "pending"
    assert pulled["recording_source_url"] == f"{api.url}/v1/convai/conversations/conv-pulled/audio"
    assert "recording_state" not in stored.session("elevenlabs", "conv-silent")
    copier.poll()
    assert stored.session("elevenlabs", "conv-pulled")["recording_state"] == "archived"
    assert len(stored.keys("audio/elevenlabs/conv-pulled/")) == 1
    assert json.loads(stored.session("elevenlabs", "conv-pulled")["vf:conversation_status"]) == "done"


def test_the_fake_api_streams_audio_of_any_size_with_the_key_only() -> None:
    import urllib.error
    import urllib.request

    from callvault_local.fake_vendor_apis import MP3_BYTES_PER_SECOND, mp3_frames

    size = 5 * 60 * MP3_BYTES_PER_SECOND  # five minutes: 4.8 MB
    chunks = mp3_frames(size)
    assert len(next(chunks)) <= 64 * 1024  # made as sent, a chunk at a time
    with FakeVendorApi("elevenlabs", key=KEY, audio_bytes=size) as fake:
        fake.add("conv-long", datetime.now(UTC))
        fake.add("conv-none", datetime.now(UTC), recording=False)
        url = f"{fake.url}/v1/convai/conversations/%s/audio"
        with urllib.request.urlopen(urllib.request.Request(url % "conv-long", headers={"xi-api-key": KEY})) as reply:
            assert reply.headers["content-type"] == "audio/mpeg" and int(reply.headers["content-length"]) == size
            body = reply.read()
        assert len(body) == size and recordings.sniff_audio(body[:64]) == "audio/mpeg"
        for conversation, headers, status in (("conv-none", {"xi-api-key": KEY}, 404), ("conv-long", {}, 401)):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(urllib.request.Request(url % conversation, headers=headers))
            assert refused.value.code == status
