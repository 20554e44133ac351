"""`callvault replay`: archived payloads filed again, idempotently; quarantined ones after a fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from callvault.vendors import base, speaknode
from callvault_local.replay import replay
from tests.conftest import Stored, payload, post_webhook


def _snapshot(stored: Stored) -> tuple[list[str], int]:
    return sorted(stored.keys()), len(stored.items())


def test_replaying_raw_payloads_writes_nothing_new(stored: Stored) -> None:
    for name in ("cozmox/status-update-in-progress", "cozmox/end-of-call-report", "cozmox/tool-calls"):
        assert post_webhook("cozmox", "server-messages", payload(name)).status == 200
    before = _snapshot(stored)
    outcomes = replay("cozmox")
    assert outcomes == {"duplicate": 2, "ignored": 1}
    assert _snapshot(stored) == before  # not an object version, not an item more


def test_quarantined_payload_is_stored_after_a_parser_fix(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    body = payload("speaknode/conversation-complete")

    def broken(*_: object) -> object:
        raise base.PayloadError("the parser bug of the day")

    with monkeypatch.context() as bug:
        bug.setattr(speaknode, "parse_model", broken)
        assert post_webhook("speaknode", "conversation-complete", body).status == 400
    assert stored.keys("quarantine/speaknode/") and not stored.items()

    # the fix ships
    assert replay("speaknode") == {}  # raw/ alone: nothing there yet
    assert replay("speaknode", quarantine=True) == {"stored": 1}
    session = stored.session("speaknode", body["data"]["session_id"])
    assert session["status"] == "ended"
    again = replay("speaknode", quarantine=True)
    assert again == {"duplicate": 2}  # its raw copy and its quarantined copy: both the same event
    assert len(stored.events("speaknode", body["data"]["session_id"])) == 1


def test_replay_honours_the_day_range(stored: Stored) -> None:
    post_webhook("voiceos", "events", payload("voiceos/conversation-started"))
    # The day the event was received, as stored (not the clock now: a test crossing midnight UTC would look a day off).
    (event,) = [item for item in stored.items() if item["sk"].startswith("EVENT#")]
    today = datetime.fromisoformat(event["received_at"].replace("Z", "+00:00")).astimezone(UTC).date()
    assert replay("voiceos", until=today - timedelta(days=1)) == {}
    assert replay("voiceos", since=today, until=today) == {"duplicate": 1}


def test_replaying_a_body_that_still_fails_counts_no_rejection(
    stored: Stored, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_: object) -> object:
        raise base.PayloadError("still broken")

    monkeypatch.setattr(speaknode, "parse_model", broken)
    assert post_webhook("speaknode", "conversation-complete", payload("speaknode/conversation-complete")).status == 400
    assert '"EventsRejected"' in capsys.readouterr().out  # the webhook counted it, once
    assert replay("speaknode", quarantine=True) == {"quarantined": 1}
    # A replay is not traffic: the quarantine alarm must not see the same body as a new malformed event.
    assert '"_aws"' not in capsys.readouterr().out
    assert len(stored.keys("quarantine/speaknode/")) == 1


def test_the_command_ends_with_its_summary(
    stored: Stored, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`callvault replay` on a deployed stack's bucket and table (moto here): the vendor matched
    case-insensitively, no progress where stderr is no terminal, the summary last."""
    from callvault_local import cli

    post_webhook("voiceos", "events", payload("voiceos/conversation-ended"))
    monkeypatch.setenv("BUCKET_NAME", "restored-after-the-test")  # the command sets both
    monkeypatch.setenv("TABLE_NAME", "restored-after-the-test")
    argv = ["replay", "--vendor", "VoiceOS", "--bucket", stored.bucket, "--table", stored.table]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "replay voiceos: duplicate 1" and err == ""


def test_replay_since_and_until_take_iso_8601_times_as_every_time_option_does(
    stored: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    from callvault_local import cli

    post_webhook("voiceos", "events", payload("voiceos/conversation-started"))
    (listed,) = boto3.client("s3").list_objects_v2(Bucket=stored.bucket, Prefix="raw/voiceos/")["Contents"]
    archived: datetime = listed["LastModified"]
    storage = ["--bucket", stored.bucket, "--table", stored.table]

    def replayed(*options: str) -> str:
        assert cli.main(["replay", "--vendor", "voiceos", *options, *storage]) == 0
        return capsys.readouterr().out.splitlines()[-1]

    second = timedelta(seconds=1)
    assert replayed("--since", archived.isoformat()) == "replay voiceos: duplicate 1"  # inclusive, to the instant
    assert replayed("--since", (archived + second).strftime("%Y-%m-%dT%H:%M:%SZ")) == "replay voiceos: nothing to do"
    assert replayed("--until", (archived - second).isoformat()) == "replay voiceos: nothing to do"
    # no zone means UTC, as in every other time option
    assert replayed("--until", (archived + second).strftime("%Y-%m-%dT%H:%M:%S")) == "replay voiceos: duplicate 1"
    day = archived.date().isoformat()  # a bare day still takes the whole day
    assert replayed("--since", day, "--until", day) == "replay voiceos: duplicate 1"
