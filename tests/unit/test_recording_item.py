"""The session item's recording attributes: one definition serves the writers and the reader."""

from __future__ import annotations

from typing import Any

import pytest

from callvault import store
from callvault.models import Recording, RecordingState

# A value for every field of `Recording`; a field added to the model without one here fails below.
SAMPLE: dict[str, Any] = {
    "source_url": "https://media.example/call.wav",
    "expires_at": "2026-11-21T10:00:00.000Z",
    "state": RecordingState.ARCHIVED,
    "s3_uri": "s3://callvault-archive/audio/speaknode/s-1/abc.wav",
    "bytes": 123_456,
    "sha256": "ab" * 32,
    "content_type": "audio/wav",
    "archived_at": "2026-11-21T09:00:00.000Z",
    "error": "HTTP 404",
    "attempts": 2,
}


def test_every_recording_field_has_a_sample() -> None:
    assert set(SAMPLE) == set(Recording.model_fields)


@pytest.mark.parametrize("field", sorted(Recording.model_fields))
def test_each_field_is_written_and_read_back(field: str) -> None:
    written = store.recording_values(Recording.model_validate({field: SAMPLE[field]}))
    assert list(written) == [f"recording_{field}"]
    item = {"pk": {"S": "speaknode#s-1"}, "sk": {"S": "SESSION"}, **written}
    assert getattr(store.recording_from_item(item), field) == SAMPLE[field]


def test_a_whole_recording_round_trips_and_absent_fields_are_null() -> None:
    recording = Recording.model_validate(SAMPLE)
    assert store.recording_from_item(store.recording_values(recording)) == recording
    assert store.recording_from_item({}) == Recording(state=RecordingState.NONE)


def test_only_fields_given_are_written() -> None:
    """An outcome names what it sets; the others (e.g. the source URL) stay as they are."""
    assert store.recording_values(Recording(state=RecordingState.FAILED, error="HTTP 404")) == {
        "recording_state": {"S": "failed"},
        "recording_error": {"S": "HTTP 404"},
    }
    with pytest.raises(KeyError):
        store.recording_attr("url")
