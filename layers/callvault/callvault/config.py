"""Function settings, read from the environment once per container and validated."""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, ConfigDict, Field

# A Lambda synchronous invocation carries at most 6 MB of event; API Gateway wraps the body in
# that event, so the body itself must stay a little below it.
LAMBDA_BODY_LIMIT = 6 * 1024 * 1024 - 64 * 1024


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table_name: str = Field(default="callvault-sessions", min_length=3)
    bucket_name: str = Field(default="callvault-archive", min_length=3)
    secret_arn: str | None = None
    max_body_bytes: int = Field(default=LAMBDA_BODY_LIMIT, gt=0, le=LAMBDA_BODY_LIMIT)
    hmac_tolerance_seconds: int = Field(default=300, gt=0, le=3600)
    speaknode_signature_header: str = Field(default="x-speaknode-signature", min_length=1)
    secret_cache_seconds: int = Field(default=300, ge=0)
    # Recordings: a file past this size fails cleanly ("too large") instead of filling the bucket.
    recording_max_bytes: int = Field(default=2 * 1024**3, gt=0)
    # The whole copy must end well inside the function's own timeout (template: 300 s).
    recording_timeout_seconds: float = Field(default=240, gt=0, le=840)
    # Copy attempts per recording before it is marked failed: the stream event's retries + 1
    # (template: MaximumRetryAttempts 6), so a record redelivered past them fetches nothing.
    recording_max_attempts: int = Field(default=7, ge=1, le=100)
    # Retention (template: TranscriptRetentionDays): session and event items expire by DynamoDB TTL
    # this many days after their last write; 0 keeps them.
    transcript_retention_days: int = Field(default=0, ge=0)
    # Only for the local stack and tests: loopback addresses and plain http allowed. Never in AWS.
    recording_allow_loopback: bool = False


@cache
def settings() -> Settings:
    """The settings of this container; a bad value fails the cold start, not a request."""
    env = os.environ
    values = {
        "table_name": env.get("TABLE_NAME"),
        "bucket_name": env.get("BUCKET_NAME"),
        "secret_arn": env.get("SECRET_ARN") or None,
        "max_body_bytes": env.get("MAX_BODY_BYTES"),
        "hmac_tolerance_seconds": env.get("HMAC_TOLERANCE_SECONDS"),
        "speaknode_signature_header": (env.get("SPEAKNODE_SIGNATURE_HEADER") or "").lower() or None,
        "secret_cache_seconds": env.get("SECRET_CACHE_SECONDS"),
        "recording_max_bytes": env.get("RECORDING_MAX_BYTES"),
        "recording_timeout_seconds": env.get("RECORDING_TIMEOUT_SECONDS"),
        "recording_max_attempts": env.get("RECORDING_MAX_ATTEMPTS"),
        "recording_allow_loopback": env.get("RECORDING_ALLOW_LOOPBACK"),
        "transcript_retention_days": env.get("TRANSCRIPT_RETENTION_DAYS"),
    }
    return Settings.model_validate({k: v for k, v in values.items() if v is not None})
