"""Keep a process away from real AWS: tests and benchmarks call this before importing boto3."""

from __future__ import annotations

import os


def isolate(credentials: str = "testing", **extra: str) -> None:
    """Fake credentials and a fixed region; no profile, endpoint or secret ARN inherited from the
    caller's shell; `extra` environment variables on top."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "SECRET_ARN"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID=credentials,
        AWS_SECRET_ACCESS_KEY=credentials,
        AWS_SESSION_TOKEN=credentials,
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_METRICS_NAMESPACE="callvault",
        **extra,
    )
