"""`callvault dev` as a user runs it: a real process on free loopback ports, real HTTP, and what
landed in moto read back through its endpoint."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from callvault_local.stack import LOCAL_BUCKET, LOCAL_TABLE
from callvault_local.template import routes
from tests.e2e.calls import report, send
from tests.e2e.conftest import ROOT, RunningStack, dev_env, started_stack
from tests.media import WAV, MediaHost
from tests.waiting import wait_until


def _send(
    stack: RunningStack, file: str, vendor: str, webhook: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`callvault send FILE --vendor V --webhook W` against the running stack."""
    return _cli(stack, "send", file, "--vendor", vendor, "--webhook", webhook, env=env)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_banner_names_every_route_secret_and_resource(dev_stack: RunningStack) -> None:
    for route in routes():
        assert f"{route.method} {dev_stack.url}{route.path}" in dev_stack.banner
    for vendor in ("agentsessions", "cozmox", "voiceos"):
        assert f"dev-{vendor}-secret" in dev_stack.banner
    assert "rotated-speaknode-secret,dev-speaknode-secret" in dev_stack.banner
    assert LOCAL_TABLE in dev_stack.banner and LOCAL_BUCKET in dev_stack.banner


def test_banner_commands_work_on_the_ports_the_stack_took() -> None:
    """The stack runs on ports of its own here, not 3000/5000: the commands it suggests say so.
    (Its own stack: the suggested send would make the shared stack's sample events duplicates.)"""
    with started_stack() as own:
        suggested = re.findall(r"(?:^ +|\()(callvault [^)\n]+)", own.banner, re.MULTILINE)
        assert any(c.startswith("callvault send ") for c in suggested), own.banner
        assert any(c.startswith("callvault archive ") for c in suggested), own.banner
        env = {k: v for k, v in dev_env().items() if k not in ("PORT", "MOTO_PORT")}
        for command in suggested:
            assert f"--port {own.url.rsplit(':', 1)[1]}" in command, command
            argv = [sys.executable, "-m", "callvault_local.cli", *shlex.split(command)[1:]]
            result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, (command, result.stderr)


@pytest.mark.parametrize("event_file", sorted(p.name for p in (ROOT / "events").glob("*.json")))
def test_every_sample_event_is_stored_once_over_http(dev_stack: RunningStack, event_file: str) -> None:
    event = json.loads((ROOT / "events" / event_file).read_text())
    _, vendor, webhook = event["rawPath"].strip("/").split("/")
    first = _send(dev_stack, f"events/{event_file}", vendor, webhook)
    assert first.returncode == 0, first.stdout + first.stderr
    stored = json.loads(first.stdout.splitlines()[-1])
    assert stored["status"] == "stored" and stored["vendor"] == vendor

    again = _send(dev_stack, f"events/{event_file}", vendor, webhook)
    assert json.loads(again.stdout.splitlines()[-1])["status"] == "duplicate"

    raw = [k for k in dev_stack.raw_keys() if k.startswith(f"raw/{vendor}/{webhook}/") and stored["event_id"] in k]
    assert len(raw) == 1
    body = dev_stack.client("s3").get_object(Bucket=LOCAL_BUCKET, Key=raw[0])["Body"].read()
    # The sample's recording link is pointed at this stack's port (it names 3000, the default).
    port = dev_stack.url.rsplit(":", 1)[1]
    sent = event["body"].replace("127.0.0.1:3000/local/sample-audio/", f"127.0.0.1:{port}/local/sample-audio/").encode()
    assert body == sent  # byte for byte
    from callvault.store import session_pk

    pk = session_pk(vendor, stored["session_id"])
    keys = {(i["pk"]["S"], i["sk"]["S"]) for i in dev_stack.items()}
    assert (pk, "SESSION") in keys and (pk, f"EVENT#{stored['event_id']}") in keys


def test_raw_payload_file_signed_with_any_configured_secret(dev_stack: RunningStack, tmp_path: Path) -> None:
    body = json.loads((ROOT / "events/payloads/speaknode/session-started.json").read_text())
    body["data"]["session_id"] = "e2e-raw-payload-session"
    payload = str(tmp_path / "payload.json")
    Path(payload).write_text(json.dumps(body))
    result = _send(dev_stack, payload, "speaknode", "session-started")
    assert result.returncode == 0 and '"status":"stored"' in result.stdout.replace(" ", "")
    # The second of the configured secrets is accepted too (rotation).
    only_old = {"CALLVAULT_SECRET_SPEAKNODE": "dev-speaknode-secret"}
    result = _send(dev_stack, payload, "speaknode", "session-started", env=only_old)
    assert result.returncode == 0 and "duplicate" in result.stdout


def _bodies_and_items(stack: RunningStack) -> tuple[int, int]:
    """What a request may write: bodies kept (raw or quarantined) and table items. (Recordings and
    the dataset's files, which earlier tests' calls write when they come, are not counted.)"""
    bodies = [k for k in stack.raw_keys() if k.startswith(("raw/", "quarantine/"))]
    return len(bodies), len(stack.items())


def test_wrong_secret_is_refused_and_nothing_written(dev_stack: RunningStack) -> None:
    before = _bodies_and_items(dev_stack)
    wrong = {"CALLVAULT_SECRET_VOICEOS": "not-the-secret"}
    result = _send(dev_stack, "events/payloads/voiceos/conversation-ended.json", "voiceos", "events", env=wrong)
    assert result.returncode == 1 and result.stdout == ""
    assert _one_line_error(result) == (
        f"callvault send: POST {dev_stack.url}/webhooks/voiceos/events -> 401: invalid token; signed with"
        " CALLVAULT_SECRET_VOICEOS (its first value): set CALLVAULT_SECRET_VOICEOS to a secret the stack accepts"
        " (`make dev` lists them)"
    )
    assert "not-the-secret" not in result.stderr
    assert _bodies_and_items(dev_stack) == before


def test_the_moto_port_given_as_the_api_port_is_one_line_saying_so(dev_stack: RunningStack) -> None:
    moto = {"PORT": dev_stack.moto_url.rsplit(":", 1)[1]}
    commands: list[tuple[str, ...]] = [
        ("send", "events/payloads/voiceos/conversation-ended.json", "--vendor", "voiceos", "--webhook", "events"),
        ("sessions", "list"),
    ]
    for args in commands:
        result = subprocess.run(
            [sys.executable, "-m", "callvault_local.cli", *args],
            cwd=ROOT,
            env={**dev_env(), **moto},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1 and "not as callvault's API does: is that the moto port?" in _one_line_error(result)
    api = {"MOTO_PORT": dev_stack.url.rsplit(":", 1)[1]}
    for args in [("archive", "ls"), ("replay", "--vendor", "cozmox")]:
        result = subprocess.run(
            [sys.executable, "-m", "callvault_local.cli", *args],
            cwd=ROOT,
            env={**dev_env(), **api},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1 and "answers as callvault's API, not moto" in _one_line_error(result)
    moto_port = dev_stack.moto_url.rsplit(":", 1)[1]
    elsewhere = subprocess.run(
        [
            sys.executable,
            "-m",
            "callvault_local.cli",
            "archive",
            "get",
            "s3://another-bucket/raw/x.json",
            "--moto-port",
            moto_port,
        ],
        cwd=ROOT,
        env=dev_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert elsewhere.returncode == 2 and "is not in this stack's bucket" in _one_line_error(elsewhere)


def test_binary_body_reaches_the_handler_base64_and_is_quarantined(dev_stack: RunningStack) -> None:
    body = bytes(range(256))
    status, reply = _post(
        f"{dev_stack.url}/webhooks/agentsessions/session-completed",
        body,
        {
            "content-type": "application/octet-stream",
            "authorization": "Bearer dev-agentsessions-secret",
        },
    )
    assert status == 400 and reply == {"error": "body is not JSON"}
    quarantined = [k for k in dev_stack.raw_keys() if k.startswith("quarantine/agentsessions/")]
    bodies = [dev_stack.client("s3").get_object(Bucket=LOCAL_BUCKET, Key=k)["Body"].read() for k in quarantined]
    assert body in bodies


def test_each_request_logs_one_line(dev_stack: RunningStack) -> None:
    dev_stack.drain_log()
    _post(f"{dev_stack.url}/webhooks/cozmox/server-messages?x=1", b"{}", {"authorization": "Bearer wrong"})
    _post(f"{dev_stack.url}/no/such/route", b"", {})
    first, second = dev_stack.request_lines(2)
    assert re.fullmatch(r"POST /webhooks/cozmox/server-messages 401 [\d.]+ ms error", first), first
    assert re.fullmatch(r"POST /no/such/route 404 [\d.]+ ms no route", second), second


def test_interrupt_stops_cleanly() -> None:
    with started_stack() as own:  # its own stack: stopping the shared one would race other tests
        own.process.send_signal(signal.SIGINT)
        assert own.process.wait(timeout=20) == 0
        rest = own.output_after_exit()
        assert "stopping" in rest, rest


def _cli(stack: RunningStack, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    port = stack.url.rsplit(":", 1)[1]
    command = [sys.executable, "-m", "callvault_local.cli", *args, "--port", port]
    return subprocess.run(command, cwd=ROOT, env={**dev_env(), **(env or {})}, capture_output=True, text=True, timeout=60)


def test_sessions_list_and_get_read_back_what_was_sent(dev_stack: RunningStack) -> None:
    sent = _send(dev_stack, "events/cozmox_server_messages.json", "cozmox", "server-messages")
    session_id = json.loads(sent.stdout.splitlines()[-1])["session_id"]

    listed = _cli(dev_stack, "sessions", "list", "--vendor", "cozmox", "--all")
    assert listed.returncode == 0, listed.stderr
    sessions = [json.loads(line) for line in listed.stdout.splitlines()]
    assert session_id in [s["session_id"] for s in sessions] and {s["vendor"] for s in sessions} == {"cozmox"}

    got = _cli(dev_stack, "sessions", "get", "cozmox", session_id)
    assert got.returncode == 0, got.stderr
    session = json.loads(got.stdout)
    assert session["status"] == "ended" and session["events"] and session["transcript"]
    assert session["events"][0]["raw_s3_uri"].startswith(f"s3://{LOCAL_BUCKET}/raw/cozmox/")

    missing = _cli(dev_stack, "sessions", "get", "cozmox", "no-such-call")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == "callvault sessions: HTTP 404: no session 'no-such-call' for cozmox\n"
    bad = _cli(dev_stack, "sessions", "list", "--limit", "500")
    assert bad.returncode == 1 and bad.stderr.startswith("callvault sessions: HTTP 400: limit") and bad.stderr.count("\n") == 1

    # a session id that needs percent-encoding in a path, as the vendors' doc examples have
    doc = _send(dev_stack, "tests/fixtures/doc-examples/agentsessions.json", "agentsessions", "session-completed")
    assert doc.returncode == 0, doc.stderr
    placeholder = _cli(dev_stack, "sessions", "get", "agentsessions", "<string>")
    assert placeholder.returncode == 0 and json.loads(placeholder.stdout)["session_id"] == "<string>", placeholder.stderr


def test_a_reader_that_went_away_is_no_traceback(dev_stack: RunningStack) -> None:
    """`callvault sessions list | head`: the pipe closed before the listing was written. The read
    end is closed first and the output unbuffered, so the first write fails every time."""
    assert _send(dev_stack, "events/cozmox_server_messages.json", "cozmox", "server-messages").returncode == 0
    read_end, write_end = os.pipe()
    os.close(read_end)
    port = dev_stack.url.rsplit(":", 1)[1]
    command = [sys.executable, "-m", "callvault_local.cli", "sessions", "list", "--all", "--port", port]
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            env={**dev_env(), "PYTHONUNBUFFERED": "1"},
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (128 + signal.SIGPIPE, "")


def test_recordings_are_archived_by_the_local_stack(dev_stack: RunningStack, tmp_path: Path) -> None:
    media = MediaHost()
    try:
        body = json.loads((ROOT / "events/payloads/speaknode/conversation-complete.json").read_text())
        body["data"].update(session_id="e2e-recording", audio_url=f"{media.url}/call.wav?sig=1")
        payload_file = tmp_path / "with-recording.json"
        payload_file.write_text(json.dumps(body))
        assert _send(dev_stack, str(payload_file), "speaknode", "conversation-complete").returncode == 0

        def copied() -> dict[str, Any] | None:
            got = _cli(dev_stack, "sessions", "get", "speaknode", "e2e-recording")
            recording: dict[str, Any] = json.loads(got.stdout)["recording"]
            return recording if recording["state"] != "pending" else None

        recording = wait_until(copied, 120, "the recording copied or failed")
        assert recording["state"] == "archived", recording
        assert recording["bytes"] == len(WAV) and recording["sha256"] == hashlib.sha256(WAV).hexdigest()
        key = recording["s3_uri"].split("/", 3)[3]
        assert dev_stack.client("s3").get_object(Bucket=LOCAL_BUCKET, Key=key)["Body"].read() == WAV
    finally:
        media.close()


def test_the_first_session_shows_an_archived_recording(dev_stack: RunningStack) -> None:
    """The README's first session: a sample sent as written (no --webhook), its recording copied
    from the sample audio the stack serves itself, on whatever port the stack took."""
    from callvault_local.sample_audio import sample_wav

    sent = _cli(dev_stack, "send", "events/payloads/retell/call-analyzed.json", "--vendor", "retell")
    assert sent.returncode == 0, sent.stderr
    session_id = json.loads(sent.stdout.splitlines()[-1])["session_id"]

    def copied() -> dict[str, Any] | None:
        got = _cli(dev_stack, "sessions", "get", "retell", session_id)
        recording: dict[str, Any] = json.loads(got.stdout)["recording"]
        return recording if recording["state"] != "pending" else None

    recording = wait_until(copied, 120, "the sample recording copied or failed")
    assert recording["state"] == "archived", recording
    audio = sample_wav()
    assert recording["bytes"] == len(audio) and recording["sha256"] == hashlib.sha256(audio).hexdigest()
    assert recording["source_url"].startswith(f"{dev_stack.url}/local/sample-audio/")
    key = recording["s3_uri"].split("/", 3)[3]
    assert dev_stack.client("s3").get_object(Bucket=LOCAL_BUCKET, Key=key)["Body"].read() == audio


def test_a_failed_recording_says_why_in_one_line_of_the_log(dev_stack: RunningStack, tmp_path: Path) -> None:
    body = json.loads((ROOT / "events/payloads/speaknode/conversation-complete.json").read_text())
    link = f"{dev_stack.url}/local/no-such-audio.wav?X-Amz-Signature=e2e-link-signature"
    body["data"].update(session_id="e2e-recording-404", audio_url=link, audio_url_expires_at="2099-01-01T00:00:00Z")
    payload_file = tmp_path / "missing-recording.json"
    payload_file.write_text(json.dumps(body))
    assert _send(dev_stack, str(payload_file), "speaknode", "conversation-complete").returncode == 0
    line = dev_stack.wait_for_line(lambda text: "e2e-recording-404" in text)
    assert line == "RecordingsArchiveFunction: recording not copied (speaknode e2e-recording-404): HTTP 404"


def _forget(stack: RunningStack, *args: str, moto_port: str | None = None) -> subprocess.CompletedProcess[str]:
    """`callvault forget ...` as a user runs it against the local stack."""
    port = moto_port or stack.moto_url.rsplit(":", 1)[1]
    command = [sys.executable, "-m", "callvault_local.cli", "forget", *args, "--moto-port", port]
    return subprocess.run(command, cwd=ROOT, env=dev_env(), capture_output=True, text=True, timeout=120)


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_forget_erases_a_session_from_the_local_stack(dev_stack: RunningStack) -> None:
    sent = _send(dev_stack, "events/cozmox_server_messages.json", "cozmox", "server-messages")
    session_id = json.loads(sent.stdout.splitlines()[-1])["session_id"]

    forgotten = _forget(dev_stack, "--vendor", "cozmox", "--session", session_id)
    assert forgotten.returncode == 0, forgotten.stderr
    answer = json.loads(forgotten.stdout)
    assert answer["status"] == "forgotten" and answer["removed"]["items"] >= 2 and answer["removed"]["raw_bodies"] >= 1
    assert session_id not in json.dumps(dev_stack.items()) and not [k for k in dev_stack.raw_keys() if session_id in k]
    got = _cli(dev_stack, "sessions", "get", "cozmox", session_id)
    assert got.returncode == 1 and "no session" in _one_line_error(got)

    again = _send(dev_stack, "events/cozmox_server_messages.json", "cozmox", "server-messages")
    assert json.loads(again.stdout.splitlines()[-1])["status"] == "forgotten"
    twice = _forget(dev_stack, "--vendor", "cozmox", "--session", session_id)
    assert twice.returncode == 0 and set(json.loads(twice.stdout)["removed"].values()) == {0}
    request = urllib.request.Request(f"{dev_stack.url}/sessions/cozmox/{session_id}", method="DELETE")
    with urllib.request.urlopen(request, timeout=30) as response:  # the same erasure over HTTP
        assert response.status == 200 and json.loads(response.read())["status"] == "forgotten"


def test_forget_mistakes_are_one_line_and_a_non_zero_exit(dev_stack: RunningStack) -> None:
    unknown = _forget(dev_stack, "--vendor", "cozmox", "--session", "call_never-seen")
    assert unknown.returncode == 1 and _one_line_error(unknown) == "callvault forget: no session 'call_never-seen' for cozmox"
    vendor = _forget(dev_stack, "--vendor", "nosuchvendor", "--session", "x")
    assert vendor.returncode == 2 and _one_line_error(vendor).startswith("callvault forget: unknown vendor 'nosuchvendor'")
    half = _forget(dev_stack, "--vendor", "cozmox", "--session", "x", "--bucket", "b")
    assert half.returncode == 2 and "--bucket and --table go together" in _one_line_error(half)
    import socket

    with socket.socket() as closed:  # a port nothing listens on: the stack is not running
        closed.bind(("127.0.0.1", 0))
        free_port = str(closed.getsockname()[1])
    down = _forget(dev_stack, "--vendor", "cozmox", "--session", "x", moto_port=free_port)
    assert down.returncode == 1 and "no local stack answers" in _one_line_error(down)


# Run where the test cannot reach in: an erasure whose time is up at once (as when the API's 20 s
# run out), against the running stack's storage and its erasure queue. Prints whether it finished.
_CUT_SHORT = "from callvault import erasure; print(erasure.erase_for_a_while('cozmox', {!r}, who='test', seconds=0).complete)"


def test_an_erasure_cut_short_is_finished_by_the_stacks_erasure_queue(dev_stack: RunningStack) -> None:
    assert "Queue-triggered (an erasure cut short goes on): SessionsEraseFunction" in dev_stack.banner
    session_id = "erasure-cut-short"
    assert send(dev_stack.url, report(session_id, recording_url=None))["status"] == "stored"
    queue_url = dev_stack.client("sqs").get_queue_url(QueueName="ErasureQueue")["QueueUrl"]
    env = dev_env() | {
        "AWS_ENDPOINT_URL": dev_stack.moto_url,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TABLE_NAME": LOCAL_TABLE,
        "BUCKET_NAME": LOCAL_BUCKET,
        "ERASURE_QUEUE_URL": queue_url,
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
    command = [sys.executable, "-c", _CUT_SHORT.format(session_id)]
    cut_short = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert (cut_short.returncode, cut_short.stdout) == (0, "False\n"), cut_short.stderr  # not complete: queued

    def erased() -> bool:
        # No item names the call, no tombstone still says `erasing`, no raw body is left.
        items = dev_stack.items()
        named = [item for item in items if session_id in json.dumps(item) or "erasure_state" in item]
        return not named and not [k for k in dev_stack.raw_keys() if session_id in k]

    wait_until(erased, 60, "the stack's erasure queue finishing the erasure")
    dev_stack.wait_for_line(lambda line: line == "SessionsEraseFunction: erasure continued")
