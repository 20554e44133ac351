"""Merges each finished day's analytics files into one (callvault.analytics.compact), daily."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from callvault import analytics
from callvault.observability import logger


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    merged = analytics.compact(datetime.now(UTC).date())
    logger.info("analytics compacted", files_merged=merged)
    return merged
