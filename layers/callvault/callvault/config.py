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
    # Reconcile (one function per vendor): the vendor, its API's base URL (empty: the vendor's
    # public one) and the secret holding its API key.
    reconcile_vendor: str | None = None
    api_url: str | None = None
    api_key_secret_arn: str | None = None
    # A pass starts this long before the last one ended: conversations the vendor lists late,
    # or that changed (started -> ended) since, are seen again.
    reconcile_overlap_seconds: int = Field(default=3600, ge=0)
    # The first pass (no watermark yet) looks this far back.
    reconcile_first_window_seconds: int = Field(default=86_400, gt=0)
    api_retries: int = Field(default=5, ge=0, le=10)
    api_backoff_seconds: float = Field(default=0.5, ge=0, le=30)
    # Erasure: the queue an erasure that ran out of time continues from (template: ErasureQueue);
    # none locally, where nothing cuts a run short.
    erasure_queue_url: str | None = None
    # A session with no event for this long and still not ended is counted in SessionsStale.
    stale_after_seconds: int = Field(default=7200, gt=0)
    # The analytics dataset (callvault/analytics.py; template: AnalyticsDataset): written from the
    # stream when true. On locally; in AWS the template parameter says.
    analytics_dataset: bool = True


class _PerFunction:
    """`settings()`: the settings of this container, read once; a bad value fails the cold start,
    not a request. Kept per function name: Lambda runs one function per container, the tests run
    several in one process, each with its own environment."""

    def __call__(self) -> Settings:
        return _read(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))

    def cache_clear(self) -> None:
        _read.cache_clear()


settings = _PerFunction()


@cache
def _read(function_name: str | None) -> Settings:
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
        "reconcile_vendor": env.get("RECONCILE_VENDOR") or None,
        "api_url": env.get("API_URL") or None,
        "api_key_secret_arn": env.get("API_KEY_SECRET_ARN") or None,
        "reconcile_overlap_seconds": env.get("RECONCILE_OVERLAP_SECONDS"),
        "reconcile_first_window_seconds": env.get("RECONCILE_FIRST_WINDOW_SECONDS"),
        "api_retries": env.get("API_RETRIES"),
        "api_backoff_seconds": env.get("API_BACKOFF_SECONDS"),
        "stale_after_seconds": env.get("STALE_AFTER_SECONDS"),
        "erasure_queue_url": env.get("ERASURE_QUEUE_URL") or None,
        "transcript_retention_days": env.get("TRANSCRIPT_RETENTION_DAYS"),
        "analytics_dataset": env.get("ANALYTICS_DATASET") or None,
    }
    return Settings.model_validate({k: v for k, v in values.items() if v is not None})
