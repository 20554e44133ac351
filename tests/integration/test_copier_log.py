"""`make dev`'s log says what became of each recording in one line: why one was not copied (the
session alone said it before), with nothing of its link, its transcript or any secret."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callvault import config
from callvault_local.copier_log import show_copier_outcomes
from callvault_local.streams import deliveries
from tests.conftest import Stored, payload, post_webhook
from tests.media import WAV, MediaHost


@pytest.fixture
def media() -> Iterator[MediaHost]:
    host = MediaHost()
    yield host
    host.close()


def test_the_copiers_outcome_is_one_line_of_the_dev_log(
    stored: Stored, media: MediaHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECORDING_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "ERROR")  # as `make dev` runs
    config.settings.cache_clear()
    lines: list[str] = []
    (copier,) = deliveries(stored.table, only="RecordingsArchiveFunction", backoff_seconds=0, log=lines.append)
    undo = show_copier_outcomes(lines.append)
    try:
        for session_id, path in (("rec-log-missing", "/missing.wav"), ("rec-log-ok", "/call.wav")):
            body = payload("speaknode/conversation-complete")
            link = f"{media.url}{path}?X-Amz-Signature=link-signature-1234"
            body["data"].update(session_id=session_id, audio_url=link, audio_url_expires_at="2099-01-01T00:00:00Z")
            assert post_webhook("speaknode", "conversation-complete", body).status == 200
        copier.poll()
    finally:
        undo()
    failed = [line for line in lines if "not copied" in line]
    assert failed == ["RecordingsArchiveFunction: recording not copied (speaknode rec-log-missing): HTTP 404"]
    (archived,) = [line for line in lines if "recording archived" in line]
    assert archived.startswith("RecordingsArchiveFunction: recording archived: audio/speaknode/rec-log-ok/")
    assert archived.endswith(f".wav ({len(WAV)} bytes)")
    turns = [turn["content"] for turn in payload("speaknode/conversation-complete")["data"]["history"] if turn["content"]]
    assert turns
    for line in lines:
        assert "link-signature" not in line and media.url not in line and "secret" not in line
        assert not any(text in line for text in turns)
