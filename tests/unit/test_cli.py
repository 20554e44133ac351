"""The CLI's pieces that do not need a running stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callvault_local import cli

ROOT = Path(__file__).resolve().parents[2]


def test_deployed_read_api_requests_are_signed_for_execute_api_in_the_urls_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    headers = cli.sigv4_headers("GET", "https://abc123.execute-api.eu-west-2.amazonaws.com/sessions?limit=5")
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-2/execute-api/aws4_request" in headers["Authorization"]
    assert "X-Amz-Date" in headers


def test_webhook_url_from_api_url_or_full_url() -> None:
    assert cli.webhook_url("voiceos", "events", None, 3000) == "http://127.0.0.1:3000/webhooks/voiceos/events"
    api = "https://abc.execute-api.us-east-1.amazonaws.com"
    assert cli.webhook_url("voiceos", "events", api + "/", 3000) == api + "/webhooks/voiceos/events"
    assert cli.webhook_url("voiceos", "events", api + "/custom", 3000) == api + "/custom"


def test_send_takes_a_payload_or_an_api_gateway_event(tmp_path: Path) -> None:
    payload = tmp_path / "payload.json"
    payload.write_bytes(b'{"a": 1}')
    assert cli.request_body(payload) == b'{"a": 1}'
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"version": "2.0", "requestContext": {}, "body": "eyJiIjogMn0=", "isBase64Encoded": True}))
    assert cli.request_body(event) == b'{"b": 2}'


def test_signing_secret_is_the_first_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLVAULT_SECRET_SPEAKNODE", " new , old")
    assert cli.vendor_secret("speaknode") == "new"
    monkeypatch.delenv("CALLVAULT_SECRET_VOICEOS", raising=False)
    assert cli.vendor_secret("voiceos") == "dev-voiceos-secret"


def test_a_refused_secret_is_named_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLVAULT_SECRET_RETELL", raising=False)
    assert cli.refused_secret_hint("retell", deployed=True) == (
        "signed with the dev default dev-retell-secret (CALLVAULT_SECRET_RETELL is not set): "
        "set CALLVAULT_SECRET_RETELL to the value of the stack's RetellSecret"
    )
    monkeypatch.setenv("CALLVAULT_SECRET_RETELL", "key_live_0123456789abcdef")
    hint = cli.refused_secret_hint("retell", deployed=False)
    assert hint == (
        "signed with CALLVAULT_SECRET_RETELL (its first value): "
        "set CALLVAULT_SECRET_RETELL to a secret the stack accepts (`make dev` lists them)"
    )
    assert "key_live" not in hint


@pytest.mark.parametrize(
    ("name", "webhook"),
    [
        ("cozmox/end-of-call-report", "server-messages"),
        ("vapi/end-of-call-report", "server-messages"),
        ("retell/call-analyzed", "events"),
        ("retell/call-ended", "events"),
        ("speaknode/conversation-complete", "conversation-complete"),
    ],
)
def test_the_sample_recording_lasts_as_long_as_each_sample_call(name: str, webhook: str) -> None:
    """A sample call's turns can each be played: its recording (the local stack's sample audio)
    is at least as long as the call and reaches its last turn."""
    import io
    import wave

    from callvault_local.sample_audio import SAMPLE_AUDIO_PATH, sample_wav
    from tests.conftest import adapter_for, payload

    body = payload(name)
    assert SAMPLE_AUDIO_PATH in json.dumps(body)
    parsed = adapter_for(name.split("/")[0]).parse(webhook, body, {})
    update = parsed.read_update()
    with wave.open(io.BytesIO(sample_wav())) as audio:
        seconds = audio.getnframes() / audio.getframerate()
    assert update.duration_seconds is not None and seconds >= update.duration_seconds
    assert all(turn.get("seconds") is None or turn["seconds"] <= seconds for turn in update.transcript or [])


def test_a_sample_recording_link_is_pointed_at_the_stack_it_is_sent_to() -> None:
    from callvault_local.sample_audio import SAMPLE_AUDIO_PATH, pointed_at, reply, sample_wav

    body = (ROOT / "events/payloads/cozmox/end-of-call-report.json").read_bytes()
    assert body.count(b"http://127.0.0.1:3000" + SAMPLE_AUDIO_PATH.encode()) == 4  # the samples link to the stack
    moved = pointed_at(body, 3917)
    assert moved == body.replace(b"127.0.0.1:3000/local/sample-audio/", b"127.0.0.1:3917/local/sample-audio/")
    assert pointed_at(moved, 3000) == body and pointed_at(b'{"url": "https://storage.vapi.ai/a.wav"}', 1) == (
        b'{"url": "https://storage.vapi.ai/a.wav"}'
    )
    served = reply("GET", SAMPLE_AUDIO_PATH + "call_7d1e-mono.wav")
    assert served is not None and served[0] == 200 and served[2] == sample_wav()
    assert sample_wav()[:4] == b"RIFF" and sample_wav()[8:12] == b"WAVE"  # a real WAV file
    assert reply("GET", "/webhooks/cozmox/server-messages") is None
    refused = reply("POST", SAMPLE_AUDIO_PATH + "x.wav")
    assert refused is not None and refused[0] == 405


def test_fake_api_prints_the_commands_with_the_ports_in_use() -> None:
    """Its own port (any free one here) in the URL to export; the stack's moto port in `reconcile`."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "MOTO_PORT": "5917", "PYTHONUNBUFFERED": "1"}
    env.pop("PORT", None)
    command = [sys.executable, "-m", "callvault_local.cli", "fake-api", "--vendor", "voiceos", "--conversations", "2"]
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            first, export, reconcile = (process.stdout.readline().rstrip("\n") for _ in range(3))
        finally:
            process.kill()
    url = first.split(" API on ", 1)[1].split(" ", 1)[0]
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0"), first
    assert export == f"  export CALLVAULT_API_URL_VOICEOS={url} CALLVAULT_API_KEY_VOICEOS=fake-api-key"
    assert reconcile == "  callvault reconcile --vendor voiceos --moto-port 5917"
