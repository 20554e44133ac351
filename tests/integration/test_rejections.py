"""Requests that must be refused: nothing unauthenticated is written, bad bodies get 4xx never 5xx."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import boto3
import pytest

from callvault_local.stack import LocalStack
from tests.conftest import PAYLOADS, Stored, payload, post_webhook, put_secret

EVENT = (PAYLOADS / "cozmox/end-of-call-report.json").read_bytes()
SAMPLE = {
    "agentsessions": "agentsessions/session-completed",
    "cozmox": "cozmox/end-of-call-report",
    "voiceos": "voiceos/conversation-ended",
    "speaknode": "speaknode/conversation-complete",
    "vapi": "vapi/end-of-call-report",
}


def _cozmox_hmac(body: bytes, secret: str, stamp: int | str) -> dict[str, str]:
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"x-signature": signature, "x-timestamp": str(stamp)}


@pytest.mark.parametrize(
    ("vendor", "webhook", "headers", "reason"),
    [
        ("agentsessions", "session-completed", {}, "missing credentials"),
        ("agentsessions", "session-completed", {"Authorization": "Bearer nope"}, "invalid token"),
        ("agentsessions", "session-completed", {"Authorization": "test-agentsessions-secret"}, "malformed authorization header"),
        ("voiceos", "events", {"Authorization": "Basic dGVzdA=="}, "malformed authorization header"),
        ("cozmox", "server-messages", {"X-Vapi-Secret": "nope"}, "invalid secret header"),
        ("cozmox", "server-messages", {"Authorization": "Bearer nope"}, "invalid token"),
        ("vapi", "server-messages", {"X-Vapi-Secret": "nope"}, "invalid secret header"),
        ("vapi", "server-messages", {"Authorization": "Bearer nope"}, "invalid token"),
        ("vapi", "server-messages", {"x-signature": "0" * 64, "x-timestamp": "1"}, "stale timestamp"),
        ("speaknode", "conversation-complete", {"X-Speaknode-Signature": "0" * 64}, "invalid signature"),
        ("speaknode", "conversation-complete", {"X-Speaknode-Signature": "not-hex"}, "invalid signature"),
    ],
)
def test_bad_credentials_store_nothing(stored: Stored, vendor: str, webhook: str, headers: dict[str, str], reason: str) -> None:
    response = post_webhook(vendor, webhook, payload(SAMPLE[vendor]), headers, sign=False)
    assert response.status == 401
    assert response.json == {"error": reason}
    assert stored.keys() == [] and stored.items() == []


def test_vapi_hmac_credential_accepted(stored: Stored) -> None:
    """Vapi's HMAC server credential: x-signature = hex HMAC-SHA256(secret, "{x-timestamp}.{body}")."""
    body = (PAYLOADS / "vapi/end-of-call-report.json").read_bytes()
    headers = _cozmox_hmac(body, "test-vapi-secret", int(time.time()))
    assert post_webhook("vapi", "server-messages", body, headers, sign=False).json["status"] == "stored"


def test_cozmox_hmac_accepted_in_seconds_and_milliseconds(stored: Stored) -> None:
    now = int(time.time())
    assert (
        post_webhook("cozmox", "server-messages", EVENT, _cozmox_hmac(EVENT, "test-cozmox-secret", now), sign=False).status == 200
    )
    ms = now * 1000
    body = json.dumps(payload("cozmox/hang")).encode()
    assert post_webhook("cozmox", "server-messages", body, _cozmox_hmac(body, "test-cozmox-secret", ms), sign=False).status == 200


@pytest.mark.parametrize(
    ("offset", "reason"),
    [(-301, "stale timestamp"), (400, "stale timestamp"), ("yesterday", "missing or malformed timestamp")],
    ids=["too-old", "in-the-future", "not-a-number"],  # fixed ids: xdist workers must collect the same tests
)
def test_cozmox_hmac_replay_and_malformed_timestamp(stored: Stored, offset: int | str, reason: str) -> None:
    stamp = int(time.time()) + offset if isinstance(offset, int) else offset
    headers = _cozmox_hmac(EVENT, "test-cozmox-secret", stamp)
    response = post_webhook("cozmox", "server-messages", EVENT, headers, sign=False)
    assert (response.status, response.json) == (401, {"error": reason})
    assert stored.keys() == []


def test_cozmox_hmac_over_another_body_is_refused(stored: Stored) -> None:
    headers = _cozmox_hmac(b'{"message":{}}', "test-cozmox-secret", int(time.time()))
    assert post_webhook("cozmox", "server-messages", EVENT, headers, sign=False).status == 401
    assert stored.keys() == []


def test_one_valid_credential_is_enough(stored: Stored) -> None:
    headers = {"Authorization": "Bearer wrong", "X-Vapi-Secret": "test-cozmox-secret"}
    assert post_webhook("cozmox", "server-messages", EVENT, headers, sign=False).status == 200


def test_legacy_signature_header_and_unprefixed_bearer(stored: Stored) -> None:
    assert post_webhook("cozmox", "server-messages", EVENT, {"X-Vapi-Signature": "test-cozmox-secret"}, sign=False).status == 200
    body = json.dumps(payload("cozmox/hang")).encode()
    assert post_webhook("cozmox", "server-messages", body, {"Authorization": "test-cozmox-secret"}, sign=False).status == 200


def test_rotated_secrets(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    from callvault import config

    raw = (PAYLOADS / "speaknode/conversation-complete.json").read_bytes()
    monkeypatch.setenv("SECRET_CACHE_SECONDS", "0")  # each rotation seen at once
    config.settings.cache_clear()
    put_secret("speaknode", "new-secret, old-secret")
    assert post_webhook("speaknode", "conversation-complete", raw, secret="old-secret").status == 200
    assert post_webhook("speaknode", "conversation-complete", raw, secret="new-secret").json["status"] == "duplicate"
    put_secret("speaknode", "new-secret")  # the old one retired
    body = json.dumps(payload("speaknode/session-started")).encode()
    assert post_webhook("speaknode", "session-started", body, secret="old-secret").status == 401
    assert len(stored.keys()) == 1


def test_no_secret_configured_refuses_everything(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    put_secret("voiceos", " , ")
    response = post_webhook("voiceos", "events", payload("voiceos/conversation-ended"), {"Authorization": "Bearer "}, sign=False)
    assert response.status == 401
    assert stored.keys() == []


def test_secrets_from_secrets_manager_with_rotation(stored: Stored, local_stack: LocalStack) -> None:
    from callvault import config

    arn = local_stack.secret_arns["voiceos"]  # the secret the template gives the function
    boto3.client("secretsmanager").put_secret_value(SecretId=arn, SecretString='["first"]')
    config.settings.cache_clear()
    body = payload("voiceos/conversation-ended")
    assert post_webhook("voiceos", "events", body, secret="first").status == 200
    boto3.client("secretsmanager").put_secret_value(SecretId=arn, SecretString='["second", "first"]')
    # Cached for five minutes, but a failed check re-reads the secret once (rate-limited).
    assert post_webhook("voiceos", "events", payload("voiceos/conversation-started"), secret="second").status == 200


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json at all", "body is not JSON"),
        (b'{"message": ', "body is not JSON"),
        (b"\xff\xfe\x00garbage", "body is not JSON"),
        (b'{"message": {"type": "hang", "call": {"id": NaN}}}', "body is not JSON"),
        (b"[1, 2, 3]", "expected a JSON object, got list"),
        (b'"a string"', "expected a JSON object, got str"),
        (b"{}", "no session id in payload"),
        (b'{"message": "hang"}', "no session id in payload"),
        (b'{"message": {"type": "hang", "call": {"id": {"nested": 1}}}}', "no session id in payload"),
        (b'{"message": {"type": "hang", "call": {"id": "   "}}}', "no session id in payload"),
        (b"[" * 100_000 + b"]" * 100_000, "body is not JSON"),
    ],
)
def test_authenticated_bad_body_is_quarantined_with_400(stored: Stored, body: bytes, reason: str) -> None:
    response = post_webhook("cozmox", "server-messages", body)
    assert (response.status, response.json) == (400, {"error": reason})
    (key,) = stored.keys()
    assert key.startswith("quarantine/cozmox/server-messages/")
    assert stored.body(key) == body
    assert stored.items() == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b["message"].update(artifact="not an object"),
        lambda b: b["message"].update(cost="twelve", durationSeconds=[1], startedAt=7),
        lambda b: b["message"]["artifact"].update(messages=[1, "two", None, {"role": 5}]),
        lambda b: b["message"].update(analysis={"summary": {"deep": [1]}}),
        lambda b: b["message"].update(endedReason="x" * 1_000_000),
        lambda b: b["message"].update(cost=1.5e300, durationSeconds=-1e300),
        lambda b: b["message"].update(structuredData={"k": "v" * 300_000}, summary="s" * 200_000),
        lambda b: b["message"]["call"].update(customer={"number": "9" * 100_000}),
    ],
)
def test_wrong_types_cost_a_fact_not_the_event(stored: Stored, mutate) -> None:  # type: ignore[no-untyped-def]
    body = payload("cozmox/end-of-call-report")
    mutate(body)
    # 1e999 is valid JSON that Python reads as infinity: it must not reach DynamoDB.
    raw = json.dumps(body).replace("1.5e+300", "1e999").encode()
    response = post_webhook("cozmox", "server-messages", raw)
    assert response.status == 200 and response.json["status"] == "stored"
    assert stored.session("cozmox", response.json["session_id"])["status"] == "ended"


def test_deeply_nested_but_valid_json_is_stored(stored: Stored) -> None:
    body = payload("speaknode/conversation-complete")
    nested: dict[str, Any] = {}
    for _ in range(500):
        nested = {"n": nested}
    body["data"]["url_parameters"] = nested
    response = post_webhook("speaknode", "conversation-complete", json.dumps(body).encode())
    assert response.status == 200


def test_body_over_the_limit_is_413_and_not_stored(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    from callvault import config

    monkeypatch.setenv("MAX_BODY_BYTES", "100000")
    config.settings.cache_clear()
    body = payload("speaknode/conversation-complete")
    body["data"]["history"][0]["content"] = "x" * 100_000
    response = post_webhook("speaknode", "conversation-complete", json.dumps(body).encode())
    assert response.status == 413 and "larger than 100000 bytes" in response.json["error"]
    assert stored.keys() == []


def test_default_limit_is_the_lambda_payload_limit(stored: Stored) -> None:
    body = b'{"pad": "' + b"x" * (6 * 1024 * 1024) + b'"}'
    assert post_webhook("speaknode", "conversation-complete", body).status == 413
