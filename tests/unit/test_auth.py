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
