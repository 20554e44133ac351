"""Stopping the local stack while a recording is being retried or downloaded: `callvault dev` and
`make dev` (make -> uv run -> python), by SIGINT to the process group as a terminal's Ctrl-C
sends it, or by SIGTERM to the process started; every process of the group must be gone soon after."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, RunningStack, dev_env, started_stack
from tests.media import MediaHost
from tests.waiting import wait_until

CALLVAULT_DEV = [sys.executable, "-m", "callvault_local.cli", "dev", "--port", "0", "--moto-port", "0"]
MAKE_DEV = ["make", "--no-print-directory", "dev", "PORT=0", "MOTO_PORT=0"]


def _group_gone(pgid: int) -> bool:
    """No process left in the group (the leader reaped first: a zombie still counts)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _send_recording(stack: RunningStack, url: str, tmp_path: Path) -> None:
    body = json.loads((ROOT / "events/payloads/speaknode/conversation-complete.json").read_text())
    body["data"].update(session_id="e2e-stop-while-copying", audio_url=url)
    payload = tmp_path / "recording.json"
    payload.write_text(json.dumps(body))
    port = stack.url.rsplit(":", 1)[1]
    command = [sys.executable, "-m", "callvault_local.cli", "send", str(payload), "--vendor", "speaknode"]
    sent = subprocess.run(
        [*command, "--webhook", "conversation-complete", "--port", port],
        cwd=ROOT,
        env=dev_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr


@pytest.mark.parametrize(
    ("command", "signum", "to_group", "path", "fetches"),
    [
        # Retrying a host that answers 503: the copier sits in urllib3's backoff between fetches.
        pytest.param(CALLVAULT_DEV, signal.SIGINT, True, "/unavailable.wav", 2, id="callvault-dev-ctrl-c-retrying"),
        pytest.param(MAKE_DEV, signal.SIGTERM, False, "/unavailable.wav", 2, id="make-dev-sigterm-retrying"),
        # A download blocked in a read: the host sent its headers and stalls (10 s per read, then retried).
        pytest.param(CALLVAULT_DEV, signal.SIGTERM, False, "/stall.wav", 1, id="callvault-dev-sigterm-stalled"),
        pytest.param(MAKE_DEV, signal.SIGINT, True, "/stall.wav", 1, id="make-dev-ctrl-c-stalled"),
    ],
)
def test_a_signal_stops_the_stack_and_its_children_whatever_is_in_flight(
    command: list[str], signum: signal.Signals, to_group: bool, path: str, fetches: int, tmp_path: Path
) -> None:
    media = MediaHost()
    try:
        with started_stack(command, new_session=True) as stack:
            _send_recording(stack, f"{media.url}{path}", tmp_path)
            wait_until(lambda: media.hits[path] >= fetches, 60, f"the copier fetching {path}")
            if to_group:
                os.killpg(stack.process.pid, signum)
            else:
                stack.process.send_signal(signum)
            # "Within a few seconds": it takes about half a second; before the fix the stalled copy held
            # the exit for its retries (a minute and more) and the 503 one for about 10 s.
            process = stack.process
            wait_until(lambda: process.poll() is not None and _group_gone(process.pid), 10, "the stack's processes gone")
            # One Ctrl-C is one stop, though make dev's callvault gets it twice (the terminal's, and uv's
            # forwarded copy): a clean "stopping", not "SIGINT again" and make's "Error 1".
            output = stack.output_after_exit()
            assert "stopping" in output, output
            assert not [line for line in output if "again" in line or "Error" in line], output
            if command is CALLVAULT_DEV:
                assert process.returncode == 0, output
    finally:
        media.close()
