"""Where a vendor's webhook secrets come from.

Locally: `CALLVAULT_SECRET_<VENDOR>` (or `CALLVAULT_SECRET_CURSOR`), several separated by commas. In AWS: the Secrets Manager
secret named by `SECRET_ARN`, holding a JSON list of strings or a comma-separated string,
cached for `secret_cache_seconds` so a rotation takes effect without a deploy.
"""

from __future__ import annotations

import json
import os
import time

from callvault.config import settings

_REFRESH_FLOOR_SECONDS = 30.0
_last_forced_refresh = 0.0


def parse_secret_value(value: str) -> tuple[str, ...]:
    """Secrets from a JSON list or a comma-separated string; blanks dropped."""
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
    from_env = os.environ.get(f"CALLVAULT_SECRET_{owner.upper()}")
    if from_env is not None:
        return parse_secret_value(from_env)
    config = settings()
    if not config.secret_arn:
        return ()
    global _last_forced_refresh
    force = refresh and time.monotonic() - _last_forced_refresh > _REFRESH_FLOOR_SECONDS
    if force:
        _last_forced_refresh = time.monotonic()
    # Imported here: only functions that read Secrets Manager pay for it.
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(config.secret_arn, max_age=config.secret_cache_seconds, force_fetch=force)
    return parse_secret_value(value if isinstance(value, str) else value.decode())


def api_key_for(vendor: str) -> str | None:
    """The key to `vendor`'s own API (reconcile): `CALLVAULT_API_KEY_<VENDOR>`, else the first
    value of the Secrets Manager secret `API_KEY_SECRET_ARN` names. None while none is set: the
    stack creates that secret empty (`[]`), and reconcile stays off until the user puts a key in."""
    from_env = os.environ.get(f"CALLVAULT_API_KEY_{vendor.upper()}")
    if from_env is not None:
        keys = parse_secret_value(from_env)
    else:
        arn = settings().api_key_secret_arn
        if not arn:
            return None
        from aws_lambda_powertools.utilities import parameters

        value = parameters.get_secret(arn, max_age=settings().secret_cache_seconds)
        keys = parse_secret_value(value if isinstance(value, str) else value.decode())
    return keys[0] if keys else None
