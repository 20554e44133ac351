"""Retell's and ElevenLabs' signatures, checked both ways against the vendors' own SDKs: what the
SDK signs, we accept; what we sign (`callvault send`, the adapters' `sign`), the SDK accepts; what
the SDK refuses, we refuse."""

from __future__ import annotations

import json
import time

import pytest
from elevenlabs import BadRequestError
from elevenlabs.webhooks_custom import WebhooksClient
from retell.lib import webhook_auth

from callvault import auth
from callvault.auth import AuthError
from callvault.vendors import elevenlabs, retell

SECRET = "key_8c1f0d2e5a"
BODY = json.dumps({"event": "call_ended", "call": {"call_id": "c1", "transcript": "Agent: héllo"}}, ensure_ascii=False).encode()


Keys = tuple[str, ...]


def _retell(headers: dict[str, str], body: bytes = BODY, secrets: Keys = (SECRET,), now: float | None = None) -> None:
    verifier = retell.retell_signature(300, clock=(lambda: now) if now is not None else time.time)
    auth.authenticate([verifier], {k.lower(): v for k, v in headers.items()}, body, secrets)


def _elevenlabs(headers: dict[str, str], body: bytes = BODY, secrets: Keys = (SECRET,), now: float | None = None) -> None:
    verifier = elevenlabs.elevenlabs_signature(clock=(lambda: now) if now is not None else time.time)
    auth.authenticate([verifier], {k.lower(): v for k, v in headers.items()}, body, secrets)


def _sdk_accepts_elevenlabs(body: bytes, header: str, secret: str = SECRET) -> bool:
    try:
        WebhooksClient.construct_event(None, body.decode(), header, secret)  # type: ignore[arg-type]
    except BadRequestError:
        return False
    return True


def test_retell_accepts_what_the_sdk_signs() -> None:
    header = webhook_auth.symmetric["sign"](BODY.decode(), SECRET)
    _retell({"x-retell-signature": header})


def test_retell_sdk_accepts_what_we_sign() -> None:
    (header,) = retell.sign(BODY, SECRET).values()
    assert webhook_auth.verify(BODY.decode(), SECRET, header) is True  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("offset_ms", "accepted"), [(-299_000, True), (299_000, True), (-301_000, False), (301_000, False)], ids=str
)
def test_retell_window_is_the_sdks(offset_ms: int, accepted: bool) -> None:
    now_ms = 1_795_425_302_000
    header = webhook_auth.symmetric["sign"](BODY.decode(), SECRET, now_ms + offset_ms)
    assert webhook_auth.symmetric["verify"](BODY.decode(), SECRET, header, {"timestamp": now_ms}) is accepted
    if accepted:
        _retell({"x-retell-signature": header}, now=now_ms / 1000)
    else:
        with pytest.raises(AuthError, match="stale"):
            _retell({"x-retell-signature": header}, now=now_ms / 1000)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda h: h.replace("d=", "d=0"),  # digest too long
        lambda h: h.upper(),  # the SDK wants lower-case hex and `v=`/`d=`
        lambda h: h.replace(",", ", "),
        lambda h: h.split(",")[1],  # no timestamp
        lambda h: h[:-1] + ("0" if h[-1] != "0" else "1"),  # digest changed
        lambda h: "v=" + str(int(h[2:15]) + 1) + h[15:],  # timestamp moved
    ],
    ids=["long", "upper", "space", "no-v", "digest", "moved"],
)
def test_retell_refuses_what_the_sdk_refuses(mangle) -> None:  # type: ignore[no-untyped-def]
    header = mangle(webhook_auth.symmetric["sign"](BODY.decode(), SECRET))
    assert not webhook_auth.verify(BODY.decode(), SECRET, header)  # type: ignore[no-untyped-call]
    with pytest.raises(AuthError):
        _retell({"x-retell-signature": header})


def test_retell_signature_covers_the_body_and_the_key() -> None:
    header = webhook_auth.symmetric["sign"](BODY.decode(), SECRET)
    with pytest.raises(AuthError, match="invalid signature"):
        _retell({"x-retell-signature": header}, body=BODY + b" ")
    with pytest.raises(AuthError, match="invalid signature"):
        _retell({"x-retell-signature": header}, secrets=("another-key",))
    _retell({"x-retell-signature": header}, secrets=("another-key", SECRET))  # rotation: any configured key


def test_elevenlabs_accepts_what_the_sdk_checks() -> None:
    (header,) = elevenlabs.sign(BODY, SECRET).values()
    assert _sdk_accepts_elevenlabs(BODY, header)  # the SDK accepts what we sign...
    _elevenlabs({"ElevenLabs-Signature": header})  # ...and so do we


@pytest.mark.parametrize(("age", "accepted"), [(29 * 60, True), (31 * 60, False), (-3600, True)], ids=str)
def test_elevenlabs_window_is_the_sdks(age: int, accepted: bool) -> None:
    # The SDK refuses a t older than 30 minutes and nothing else; a later t is accepted by both.
    headers = elevenlabs.sign(BODY, SECRET)
    stamp = int(time.time()) - age
    digest = _digest(stamp, BODY)
    header = f"t={stamp},v0={digest}"
    assert _sdk_accepts_elevenlabs(BODY, header) is accepted
    if accepted:
        _elevenlabs({"ElevenLabs-Signature": header})
    else:
        with pytest.raises(AuthError, match="stale"):
            _elevenlabs({"ElevenLabs-Signature": header})
    assert headers  # signed now: always fresh


def _digest(stamp: int, body: bytes, secret: str = SECRET) -> str:
    import hashlib
    import hmac

    return hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    "header",
    [
        "v0={digest}",  # no timestamp
        "t={stamp}",  # no signature
        "t={stamp},v0={digest_upper}",  # the SDK compares the hex as sent: lower case
        "t={stamp},v0=deadbeef",
        "t={stamp},v1={digest}",
        "t={later},v0={digest}",  # timestamp moved
    ],
)
def test_elevenlabs_refuses_what_the_sdk_refuses(header: str) -> None:
    stamp = int(time.time())
    digest = _digest(stamp, BODY)
    text = header.format(stamp=stamp, later=stamp + 1, digest=digest, digest_upper=digest.upper())
    assert not _sdk_accepts_elevenlabs(BODY, text)
    with pytest.raises(AuthError):
        _elevenlabs({"ElevenLabs-Signature": text})


def test_elevenlabs_signature_covers_body_and_secret_and_any_secret_may_match() -> None:
    (header,) = elevenlabs.sign(BODY, SECRET).values()
    with pytest.raises(AuthError, match="invalid signature"):
        _elevenlabs({"ElevenLabs-Signature": header}, body=BODY[:-1])
    with pytest.raises(AuthError, match="invalid signature"):
        _elevenlabs({"ElevenLabs-Signature": header}, secrets=("other",))
    _elevenlabs({"ElevenLabs-Signature": header}, secrets=("other", SECRET))
