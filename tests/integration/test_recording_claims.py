"""The recording copier's claim against the invocation's time (issue 18, defect 3): a copy cut
short by the function's timeout or by a crash leaves no claim that outlives it, so the retry
Lambda makes copies the recording; and of two copiers racing for one recording, one copies it.

Driven through the recording function's handler by the local stream runner (template filters,
batch item failures, retries), the invocation's timeout shortened from the template's 300 s."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from callvault import archive, config, recordings
from callvault_local.streams import StreamDelivery, deliveries
from tests.conftest import Stored, payload, post_webhook
from tests.media import BIG_WAV, WAV, _LoopbackServer, _serve
from tests.waiting import wait_until

INVOCATION_SECONDS = 6.0  # the function's timeout here (the template's is 300 s)


class Host(_LoopbackServer):
    """A media host whose first answer for `/trickle.wav` never ends in time (a file sent a
    kilobyte every half second), later ones at once; `/held.wav` answers once `release` is set."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.release, self.closing = threading.Event(), threading.Event()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                host.hits[path] += 1
                if path == "/trickle.wav" and host.hits[path] == 1:
                    self._trickle()
                elif path == "/held.wav":
                    host.release.wait(30)
                    self._send(WAV)
                else:
                    self._send(WAV)

            def _send(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("content-type", "audio/wav")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _trickle(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "audio/wav")
                self.send_header("content-length", str(len(BIG_WAV)))
                self.end_headers()
                try:
                    for start in range(0, len(BIG_WAV), 1000):
                        if host.closing.wait(0.5):
                            return
                        self.wfile.write(BIG_WAV[start : start + 1000])
                        self.wfile.flush()
                except OSError:
                    pass  # the copier gave up: as it should

            def log_message(self, *_: Any) -> None:
                pass

        self.server, self.url = _serve(Handler)

    def close(self) -> None:
        self.closing.set()
        self.release.set()
        super().close()


@pytest.fixture
def host() -> Iterator[Host]:
    served = Host()
    yield served
    served.close()


@pytest.fixture
def copier(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> StreamDelivery:
    """The recording function fed from the table's stream, its timeout INVOCATION_SECONDS; its
    own copy bound (RECORDING_TIMEOUT_SECONDS) the template's 240 s."""
    monkeypatch.setenv("RECORDING_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("RECORDING_TIMEOUT_SECONDS", "240")
    config.settings.cache_clear()
    (delivery,) = deliveries(stored.table, only="RecordingsArchiveFunction", backoff_seconds=0.5, log=lambda _: None)
    assert delivery.function.timeout_seconds == 300  # from the template
    delivery.function = dataclasses.replace(delivery.function, timeout_seconds=INVOCATION_SECONDS)
    return delivery


def _call_with_recording(url: str, session_id: str) -> str:
    body = payload("speaknode/conversation-complete")
    body["data"].update(session_id=session_id, audio_url=url, audio_url_expires_at="2099-01-01T00:00:00Z")
    assert post_webhook("speaknode", "conversation-complete", body).status == 200
    return session_id


def _recording(stored: Stored, session_id: str) -> dict[str, Any]:
    session = stored.session("speaknode", session_id)
    return {k.removeprefix("recording_"): v for k, v in session.items() if k.startswith("recording_")}


def test_a_copy_cut_short_by_the_timeout_is_archived_on_a_later_retry(stored: Stored, copier: StreamDelivery, host: Host) -> None:
    """The first fetch would take hours: the copy stops before the invocation's end (not killed
    at it holding its claim), gives its claim back, and Lambda's retry copies the recording."""
    logs: list[str] = []
    copier.log = logs.append
    session_id = _call_with_recording(f"{host.url}/trickle.wav", "rec-cut-short")
    copier.poll()
    assert not [line for line in logs if "Task timed out" in line]  # it stopped itself, in time
    recording = _recording(stored, session_id)
    assert recording["state"] == "archived", recording
    assert recording["attempts"] == 2 and host.hits["/trickle.wav"] == 2
    assert recording["bytes"] == len(WAV) and "claim" not in recording
    assert copier.dead_letters == []


def test_a_copy_that_crashed_holding_its_claim_is_archived_on_a_later_retry(
    stored: Stored, copier: StreamDelivery, host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runtime dies in the middle of the copy (no release runs): the retry finds the claim
    live, waits for it to lapse with the dead invocation's time, or is retried later; never
    answers the record done while the recording is still pending."""
    upload = archive.upload_stream
    crashes = Counter[str]()

    def crash_once(*args: Any, **kwargs: Any) -> None:
        if not crashes["upload"]:
            crashes["upload"] += 1
            raise SystemExit("the runtime exited")  # as a sandbox dying mid-copy: nothing after it runs
        upload(*args, **kwargs)

    monkeypatch.setattr(archive, "upload_stream", crash_once)
    session_id = _call_with_recording(f"{host.url}/call.wav", "rec-crashed")
    copier.poll()
    recording = _recording(stored, session_id)
    assert crashes["upload"] == 1
    assert recording["state"] == "archived", recording
    assert recording["attempts"] == 2 and host.hits["/call.wav"] == 2
    assert copier.dead_letters == []


def test_of_two_copiers_racing_for_one_recording_exactly_one_copies(stored: Stored, copier: StreamDelivery, host: Host) -> None:
    """A second copier starts while the first holds the claim and is still fetching: it fetches
    nothing and does not answer archived; the first copies the file once."""
    session_id = _call_with_recording(f"{host.url}/held.wav", "rec-raced")
    job = recordings.RecordingJob("speaknode", session_id, f"{host.url}/held.wav", None)
    outcomes: list[str] = []
    first = threading.Thread(target=lambda: outcomes.append(recordings.copy_recording(job, INVOCATION_SECONDS)))
    first.start()
    wait_until(lambda: host.hits["/held.wav"], 30, "the first copier fetching")
    second = recordings.copy_recording(job, INVOCATION_SECONDS)
    host.release.set()
    first.join(30)
    assert outcomes == ["archived"] and second in ("retry", "skipped")
    assert host.hits["/held.wav"] == 1
    assert len(stored.keys(f"audio/speaknode/{session_id}/")) == 1
    assert _recording(stored, session_id)["attempts"] == 1
