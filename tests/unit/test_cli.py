"""The CLI's pieces that do not need a running stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callvault_local import cli


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
