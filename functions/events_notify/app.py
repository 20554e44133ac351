"""Signed outbound webhooks: each `callvault` bus event the notify queue holds, POSTed to the
user's URL (callvault.notify); one that fails waits its backoff on the queue, then tries again."""

from __future__ import annotations

from typing import Any

from callvault import notify
from callvault.observability import logger


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return notify.handle_batch(event.get("Records", []))
