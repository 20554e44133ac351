"""Webhook authentication: bearer tokens, secret headers and HMAC signatures.

Every comparison is constant-time and tries every configured secret, so a secret can be
rotated by adding the new one before removing the old. A vendor's scheme is a tuple of
verifiers; one valid credential is enough.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence

Headers = Mapping[str, str]  # lower-cased names
# A verifier answers None when its credential is absent, True when it is valid, and raises
# AuthError when it is present but wrong.
Verifier = Callable[[Headers, bytes, Sequence[bytes]], bool | None]


class AuthError(Exception):
    """The request is not authenticated; `reason` is short, safe to log and to return."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def authenticate(scheme: Sequence[Verifier], headers: Headers, body: bytes, secrets: Sequence[str]) -> None:
    """Return when any verifier of `scheme` accepts the request; raise AuthError otherwise."""
    if not secrets:
        raise AuthError("no secret configured for this vendor")
    keys = [s.encode() for s in secrets]
    failure: AuthError | None = None
    for verify in scheme:
        try:
            if verify(headers, body, keys):
                return
        except AuthError as exc:
            failure = failure or exc
    raise failure or AuthError("missing credentials")


def _matches_any(presented: bytes, candidates: Sequence[bytes]) -> bool:
    # No early exit: the time taken does not depend on which secret matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(presented, candidate)
    return matched


def bearer(header: str = "authorization", prefix_required: bool = True) -> Verifier:
    """`Authorization: Bearer <secret>` (the prefix optional where the vendor makes it so)."""

    def verify(headers: Headers, body: bytes, secrets: Sequence[bytes]) -> bool | None:
        value = headers.get(header)
        if value is None:
            return None
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() == "bearer" and token:
            presented = token.strip()
        elif prefix_required:
            raise AuthError("malformed authorization header")
        else:
            presented = value.strip()
        if _matches_any(presented.encode(), secrets):
            return True
        raise AuthError("invalid token")

    return verify


def bearer_headers(body: bytes, secret: str) -> dict[str, str]:
    """The headers of a request authenticated the way `bearer()` checks (local CLI and tests)."""
    return {"Authorization": f"Bearer {secret}"}


def secret_header(*names: str) -> Verifier:
    """A header that carries the shared secret itself (cozmox's legacy `X-Vapi-Secret`)."""

    def verify(headers: Headers, body: bytes, secrets: Sequence[bytes]) -> bool | None:
        present = [headers[name] for name in names if name in headers]
        if not present:
            return None
        if any(_matches_any(value.strip().encode(), secrets) for value in present):
            return True
        raise AuthError("invalid secret header")

    return verify


def _decode_digest(signature: str) -> bytes | None:
    """A presented HMAC-SHA256 digest, hex (optionally `sha256=`-prefixed) or base64."""
    text = signature.strip()
    if text.lower().startswith("sha256="):
        text = text[7:]
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def hmac_matches(presented: bytes, message: bytes, secrets: Sequence[bytes]) -> bool:
    """Whether `presented` is HMAC-SHA256(secret, `message`) for any of `secrets`, compared in constant time."""
    expected = [hmac.new(key, message, hashlib.sha256).digest() for key in secrets]
    return _matches_any(presented, expected)


def hmac_body(header: str) -> Verifier:
    """`header` = HMAC-SHA256(secret, raw body); no timestamp is signed (speaknode)."""

    def verify(headers: Headers, body: bytes, secrets: Sequence[bytes]) -> bool | None:
        signature = headers.get(header)
        if signature is None:
            return None
        presented = _decode_digest(signature)
        if presented is not None and hmac_matches(presented, body, secrets):
            return True
        raise AuthError("invalid signature")

    return verify


def hmac_body_headers(header: str) -> Callable[[bytes, str], dict[str, str]]:
    """How a sender signs a request the way `hmac_body(header)` checks (local CLI and tests)."""

    def sign(body: bytes, secret: str) -> dict[str, str]:
        return {header: hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}

    return sign


def hmac_timestamped(
    signature_header: str = "x-signature",
    timestamp_header: str = "x-timestamp",
    tolerance_seconds: int = 300,
    clock: Callable[[], float] = time.time,
) -> Verifier:
    """`signature_header` = HMAC-SHA256(secret, "{timestamp}.{body}"), timestamp within tolerance.

    The timestamp is Unix seconds or milliseconds; outside the window is a replay.
    """

    def verify(headers: Headers, body: bytes, secrets: Sequence[bytes]) -> bool | None:
        signature = headers.get(signature_header)
        if signature is None:
            return None
        stamp = headers.get(timestamp_header, "").strip()
        if not stamp.isdigit() or len(stamp) > 16:
            raise AuthError("missing or malformed timestamp")
        seconds = int(stamp) / 1000 if len(stamp) >= 12 else int(stamp)
        if abs(clock() - seconds) > tolerance_seconds:
            raise AuthError("stale timestamp")
        presented = _decode_digest(signature)
        if presented is not None and hmac_matches(presented, stamp.encode() + b"." + body, secrets):
            return True
        raise AuthError("invalid signature")

    return verify


# ---------------------------------------------------------------- Standard Webhooks
# https://www.standardwebhooks.com: `webhook-id`, `webhook-timestamp` (Unix seconds) and
# `webhook-signature`, a space-separated list of `v1,<base64 HMAC-SHA256>` over
# "{id}.{timestamp}.{body}", keyed by the secret's bytes (`whsec_<base64>`). The id is the event's
# idempotency key (ingest.event_id_for reads it).
_WHSEC_PREFIX = b"whsec_"


def _standard_webhooks_key(secret: bytes) -> bytes | None:
    """The HMAC key of a `whsec_<base64>` (or bare base64) secret; None when it is not base64."""
    text = secret.removeprefix(_WHSEC_PREFIX).strip().rstrip(b"=")
    try:  # padding optional, as the reference library takes it
        key = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def standard_webhooks(tolerance_seconds: int = 300, clock: Callable[[], float] = time.time) -> Verifier:
    """A Standard Webhooks signature, its timestamp within `tolerance_seconds` either way."""

    def verify(headers: Headers, body: bytes, secrets: Sequence[bytes]) -> bool | None:
        signatures = headers.get("webhook-signature")
        if signatures is None:
            return None
        message_id, stamp = headers.get("webhook-id", "").strip(), headers.get("webhook-timestamp", "").strip()
        if not message_id or not stamp.isdigit() or len(stamp) > 12:
            raise AuthError("missing or malformed webhook-id or webhook-timestamp")
        if abs(clock() - int(stamp)) > tolerance_seconds:
            raise AuthError("stale timestamp")
        keys = [key for key in map(_standard_webhooks_key, secrets) if key]
        signed = f"{message_id}.{stamp}.".encode() + body
        presented = [_decode_digest(sig) for version, _, sig in (s.partition(",") for s in signatures.split()) if version == "v1"]
        expected = [hmac.new(key, signed, hashlib.sha256).digest() for key in keys]
        # Every presented signature against every key, no early exit.
        matched = False
        for candidate in presented:
            matched |= candidate is not None and _matches_any(candidate, expected)
        if matched:
            return True
        raise AuthError("invalid signature")

    return verify


def standard_webhooks_headers(body: bytes, secret: str, clock: Callable[[], float] = time.time) -> dict[str, str]:
    """The headers of a request signed the Standard Webhooks way (local CLI and tests); the
    message id is derived from the body, so the same body sent again is the same message."""
    key = _standard_webhooks_key(secret.encode())
    if key is None:
        raise ValueError("a Standard Webhooks secret is whsec_ followed by base64")
    message_id = "msg_" + hashlib.sha256(body).hexdigest()[:32]
    stamp = str(int(clock()))
    signature = base64.b64encode(hmac.new(key, f"{message_id}.{stamp}.".encode() + body, hashlib.sha256).digest()).decode()
    return {"webhook-id": message_id, "webhook-timestamp": stamp, "webhook-signature": f"v1,{signature}"}
