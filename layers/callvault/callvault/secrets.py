"""Where a vendor's webhook secrets, and its private API key, come from.

One format everywhere: the secret itself, several separated by commas (the first current).
Locally: `CALLVAULT_SECRET_<VENDOR>` (or `CALLVAULT_SECRET_CURSOR`); `CALLVAULT_API_KEY_<VENDOR>`.
In AWS: the Secrets Manager secret named by `SECRET_ARN` (by `API_KEY_ARN_<VENDOR>` for an API
key; the template's `<Vendor>Secret`, `<Vendor>ApiKeySecret`), cached for `secret_cache_seconds`
so a rotation takes effect without a deploy. A JSON list of strings, the form earlier versions
documented (and `[]`, an API key secret as created: none), is read too.
"""

from __future__ import annotations

import json
import os
import time

from callvault.config import settings

_REFRESH_FLOOR_SECONDS = 30.0
_last_forced_refresh = 0.0


def parse_secret_value(value: str) -> tuple[str, ...]:
    """Secrets from a comma-separated string (or a JSON list of strings); blanks dropped."""
    text = value.strip()
    items: list[object]
    if text.startswith("["):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError:
            loaded = None
        items = loaded if isinstance(loaded, list) else []
    else:
        items = list(text.split(","))
    return tuple(s.strip() for s in items if isinstance(s, str) and s.strip())


def secrets_for(owner: str, *, refresh: bool = False) -> tuple[str, ...]:
    """The secrets of `owner` (a vendor, whose webhooks they authenticate, or `cursor`, the read
    API's cursor signing keys); the first is current, all are accepted; empty means none.

    `refresh` re-reads Secrets Manager (at most every 30 s) so that a newly rotated-in secret
    is accepted before the cache expires.
    """
    return _values(f"CALLVAULT_SECRET_{owner.upper()}", settings().secret_arn, refresh=refresh)


def api_key_for(vendor: str) -> str | None:
    """The private API key callvault calls `vendor`'s API with (the first listed), or None when
    none is configured (the secret holds an empty list until the user puts the key in it). The
    secret: `API_KEY_ARN_<VENDOR>` (the recordings copier), else `API_KEY_SECRET_ARN` (a vendor's
    reconcile function)."""
    arn = os.environ.get(f"API_KEY_ARN_{vendor.upper()}") or settings().api_key_secret_arn
    keys = _values(f"CALLVAULT_API_KEY_{vendor.upper()}", arn, refresh=False)
    return keys[0] if keys else None


def notify_secrets() -> tuple[str, ...]:
    """The outbound webhooks' signing secrets (`whsec_...`; each adds a signature, so a receiver
    keeps verifying while one is rotated): `CALLVAULT_NOTIFY_SECRET` locally, else the secret `NOTIFY_SECRET_ARN` names."""
    return _values("CALLVAULT_NOTIFY_SECRET", os.environ.get("NOTIFY_SECRET_ARN") or None, refresh=False)


def _values(env_name: str, secret_arn: str | None, *, refresh: bool) -> tuple[str, ...]:
    from_env = os.environ.get(env_name)
    if from_env is not None:
        return parse_secret_value(from_env)
    if not secret_arn:
        return ()
    config = settings()
    global _last_forced_refresh
    force = refresh and time.monotonic() - _last_forced_refresh > _REFRESH_FLOOR_SECONDS
    if force:
        _last_forced_refresh = time.monotonic()
    # Imported here: only functions that read Secrets Manager pay for it.
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_arn, max_age=config.secret_cache_seconds, force_fetch=force)
    return parse_secret_value(value if isinstance(value, str) else value.decode())
