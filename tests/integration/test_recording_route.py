"""GET /sessions/{vendor}/{session_id}/recording: a redirect to a short-lived presigned URL of
the archived recording, where Range requests work; 404 when there is nothing to play."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from callvault_local.dev import LocalApi
from callvault_local.streams import StreamDelivery
from tests.conftest import Stored, payload, post_webhook
from tests.media import WAV, MediaHost

API = LocalApi()


def _call(session_id: str, audio_url: str | None) -> None:
    body = payload("speaknode/conversation-complete")
    body["data"].update(session_id=session_id, audio_url=audio_url, audio_url_expires_at="2099-01-01T00:00:00Z")
    assert post_webhook("speaknode", "conversation-complete", body).status == 200


def _recording(session_id: str, vendor: str = "speaknode") -> tuple[int, dict[str, str], bytes]:
    reply = API.handle("GET", f"/sessions/{vendor}/{session_id}/recording", {}, b"", "127.0.0.1")
    return reply.status, reply.headers, reply.body


def test_archived_recording_redirects_to_a_presigned_url_that_serves_ranges(
    stored: Stored, copier: StreamDelivery, media: MediaHost
) -> None:
    _call("rec-route-ok", f"{media.url}/call.wav")
    copier.poll()
    status, headers, _ = _recording("rec-route-ok")
    assert status == 302 and headers["cache-control"] == "no-store"
    location = urlsplit(headers["location"])
    query = parse_qs(location.query)
    assert location.path.endswith(".wav") and "/audio/speaknode/rec-route-ok/" in "/" + location.netloc + location.path
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Expires"] == ["300"]
    # moto serves the presigned URL (its mock intercepts requests to AWS hosts): a Range is answered 206.
    ranged = requests.get(headers["location"], headers={"Range": "bytes=100-199"}, timeout=5)
    assert ranged.status_code == 206 and ranged.content == WAV[100:200]
    assert ranged.headers["content-range"] == f"bytes 100-199/{len(WAV)}"


@pytest.mark.parametrize(
    ("session_id", "audio"),
    [("rec-route-none", None), ("rec-route-failed", "/missing.wav")],
    ids=["no recording", "failed copy"],
)
def test_no_archived_recording_is_404(
    stored: Stored, copier: StreamDelivery, media: MediaHost, session_id: str, audio: str | None
) -> None:
    _call(session_id, f"{media.url}{audio}" if audio else None)
    copier.poll()
    status, headers, body = _recording(session_id)
    assert status == 404 and headers["content-type"] == "application/json"
    assert "no archived recording" in json.loads(body)["error"]


def test_unknown_session_and_vendor_are_404(stored: Stored) -> None:
    assert _recording("never-heard-of")[0] == 404
    status, _, body = _recording("x", vendor="nosuchvendor")
    assert status == 404 and "error" in json.loads(body)


def test_erased_session_has_no_recording(stored: Stored, copier: StreamDelivery, media: MediaHost) -> None:
    _call("rec-route-erased", f"{media.url}/call.wav")
    copier.poll()
    assert _recording("rec-route-erased")[0] == 302
    assert API.handle("DELETE", "/sessions/speaknode/rec-route-erased", {}, b"", "127.0.0.1").status == 200
    assert _recording("rec-route-erased")[0] == 404
