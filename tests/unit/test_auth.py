"""The verifiers on their own: each scheme, rotation, and what counts as absent or wrong."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from callvault import auth

BODY = b'{"hello": "world"}'


def _sig(secret: bytes, message: bytes) -> bytes:
    return hmac.new(secret, message, hashlib.sha256).digest()


def test_every_secret_is_tried_for_rotation() -> None:
    scheme = [auth.bearer()]
    auth.authenticate(scheme, {"authorization": "Bearer old"}, BODY, ["new", "old"])
    auth.authenticate(scheme, {"authorization": "bearer  new "}, BODY, ["new", "old"])
    with pytest.raises(auth.AuthError, match="invalid token"):
        auth.authenticate(scheme, {"authorization": "Bearer older"}, BODY, ["new", "old"])


def test_no_secret_configured_fails_closed() -> None:
    with pytest.raises(auth.AuthError, match="no secret configured"):
        auth.authenticate([auth.bearer()], {"authorization": "Bearer "}, BODY, [])


def test_missing_credential_is_named() -> None:
    with pytest.raises(auth.AuthError, match="missing credentials"):
        auth.authenticate([auth.bearer(), auth.hmac_body("x-sig")], {"x-other": "1"}, BODY, ["s"])


@pytest.mark.parametrize(
    "encode",
    [
        lambda d: d.hex(),
        lambda d: d.hex().upper(),
        lambda d: "sha256=" + d.hex(),
        lambda d: base64.b64encode(d).decode(),
    ],
)
def test_hmac_body_encodings(encode) -> None:  # type: ignore[no-untyped-def]
    verify = auth.hmac_body("x-sig")
    assert verify({"x-sig": encode(_sig(b"s", BODY))}, BODY, [b"s"]) is True


def test_hmac_body_rejects_tampering_and_truncation() -> None:
    verify = auth.hmac_body("x-sig")
    good = _sig(b"s", BODY).hex()
    for presented in (good[:-2], good + "00", _sig(b"s", BODY + b" ").hex(), "", "zz" * 32):
        with pytest.raises(auth.AuthError):
            verify({"x-sig": presented}, BODY, [b"s"])


def test_hmac_timestamped_window_uses_the_clock() -> None:
    verify = auth.hmac_timestamped(tolerance_seconds=300, clock=lambda: 1_800_000_000.0)
    signature = _sig(b"s", b"1799999800." + BODY).hex()
    assert verify({"x-signature": signature, "x-timestamp": "1799999800"}, BODY, [b"s"]) is True
    ms_signature = _sig(b"s", b"1799999800000." + BODY).hex()
    assert verify({"x-signature": ms_signature, "x-timestamp": "1799999800000"}, BODY, [b"s"]) is True
    late = _sig(b"s", b"1799999699." + BODY).hex()
    with pytest.raises(auth.AuthError, match="stale"):
        verify({"x-signature": late, "x-timestamp": "1799999699"}, BODY, [b"s"])
    with pytest.raises(auth.AuthError, match="malformed timestamp"):
        verify({"x-signature": signature}, BODY, [b"s"])


def test_signature_with_the_timestamp_moved_is_refused() -> None:
    verify = auth.hmac_timestamped(clock=lambda: 1_800_000_000.0)
    signature = _sig(b"s", b"1799999800." + BODY).hex()
    with pytest.raises(auth.AuthError, match="invalid signature"):
        verify({"x-signature": signature, "x-timestamp": "1799999801"}, BODY, [b"s"])


def test_secret_header_matches_any_named_header() -> None:
    verify = auth.secret_header("x-vapi-secret", "x-vapi-signature")
    assert verify({"x-vapi-signature": "s"}, BODY, [b"s"]) is True
    assert verify({}, BODY, [b"s"]) is None
    with pytest.raises(auth.AuthError):
        verify({"x-vapi-secret": "S"}, BODY, [b"s"])


def test_comparisons_are_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every comparison goes through hmac.compare_digest, for every configured secret.
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    auth.authenticate([auth.bearer()], {"authorization": "Bearer first"}, BODY, ["first", "second", "third"])
    assert len(calls) == 3


# ---------------------------------------------------------------- Standard Webhooks, against the reference library
SW_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-test-key-32byt").decode()
SW_OLD_SECRET = "whsec_" + base64.b64encode(b"the-previous-key-still-listed-00").decode()


def _library_headers(secret: str, body: bytes, message_id: str = "msg_2Xb9", at: float | None = None) -> dict[str, str]:
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook

    stamp = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)
    signature = Webhook(secret).sign(msg_id=message_id, timestamp=stamp, data=body.decode())
    return {"webhook-id": message_id, "webhook-timestamp": str(int(stamp.timestamp())), "webhook-signature": signature}


def test_standard_webhooks_accepts_what_the_reference_library_signs() -> None:
    auth.authenticate([auth.standard_webhooks()], _library_headers(SW_SECRET, BODY), BODY, [SW_SECRET])
    # Rotation: the old secret still listed signs too; bare base64 (no whsec_) is a secret as well.
    auth.authenticate([auth.standard_webhooks()], _library_headers(SW_OLD_SECRET, BODY), BODY, [SW_SECRET, SW_OLD_SECRET])
    auth.authenticate([auth.standard_webhooks()], _library_headers(SW_SECRET, BODY), BODY, [SW_SECRET.removeprefix("whsec_")])


def test_the_reference_library_accepts_what_callvault_signs() -> None:
    from standardwebhooks.webhooks import Webhook

    headers = auth.standard_webhooks_headers(BODY, SW_SECRET)
    assert Webhook(SW_SECRET).verify(BODY, headers) == {"hello": "world"}
    assert headers == auth.standard_webhooks_headers(BODY, SW_SECRET) | {"webhook-timestamp": headers["webhook-timestamp"]}


def test_standard_webhooks_any_of_several_signatures() -> None:
    headers = _library_headers(SW_SECRET, BODY)
    wrong = "v1," + base64.b64encode(b"\0" * 32).decode()
    headers["webhook-signature"] = f"v1a,ZmFrZQ== {wrong} {headers['webhook-signature']}"
    auth.authenticate([auth.standard_webhooks()], headers, BODY, [SW_SECRET])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webhook-timestamp": "OFFSET-301"}, "stale timestamp"),
        ({"webhook-timestamp": "OFFSET+301"}, "stale timestamp"),
        ({"webhook-id": ""}, "missing or malformed webhook-id or webhook-timestamp"),
        ({"webhook-timestamp": "soon"}, "missing or malformed webhook-id or webhook-timestamp"),
        ({"webhook-id": "msg_other"}, "invalid signature"),  # the id is signed: it cannot be swapped
        ({"webhook-signature": "v1,not base64!"}, "invalid signature"),
    ],
)
def test_standard_webhooks_refusals(change: dict[str, str], reason: str) -> None:
    import time

    headers = _library_headers(SW_SECRET, BODY)
    for name, value in change.items():
        if value.startswith("OFFSET"):  # signed by the library at that time, so only the time is wrong
            headers = _library_headers(SW_SECRET, BODY, at=time.time() + int(value.removeprefix("OFFSET")))
        else:
            headers[name] = value
    with pytest.raises(auth.AuthError, match=reason):
        auth.authenticate([auth.standard_webhooks()], headers, BODY, [SW_SECRET])


def test_standard_webhooks_refuses_another_body_and_another_secret() -> None:
    headers = _library_headers(SW_SECRET, BODY)
    with pytest.raises(auth.AuthError, match="invalid signature"):
        auth.authenticate([auth.standard_webhooks()], headers, BODY + b" ", [SW_SECRET])
    with pytest.raises(auth.AuthError, match="invalid signature"):
        auth.authenticate([auth.standard_webhooks()], headers, BODY, [SW_OLD_SECRET, "not base64 at all!"])


def test_standard_webhooks_absent_is_not_its_credential() -> None:
    assert auth.standard_webhooks()({"authorization": "Bearer x"}, BODY, [SW_SECRET.encode()]) is None
