"""Signed outbound webhooks (DESIGN.md "Events out"): the bus's events POSTed to the user's URL.

The bus hands every `callvault` event to a queue (template: NotifyRule -> NotifyQueue); this
sender takes them from there, so a slow or failing receiver never slows ingest or the bus.
Each is POSTed as Standard Webhooks say: body `{"type", "timestamp", "data": <detail>}`, headers
`webhook-id` (= `detail.id`, the same on every retry: the receiver drops repeats), `webhook-timestamp`
(when sent) and `webhook-signature` (`v1,<base64 HMAC-SHA256>` by the `standardwebhooks` library,
one per configured secret, so a secret can be rotated without a gap).

A delivery that fails (not 2xx, refused, timed out) stays on the queue, hidden for a backoff that
doubles with each receive (`backoff_seconds`); past the queue's maxReceiveCount SQS moves it to
the dead-letter queue, from which `callvault events redrive` (or SQS's own redrive) sends it again.
The URL passes the same checks as a recording fetch (callvault.download). The secret is never logged.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from callvault.config import settings
from callvault.download import DownloadError, pool, vetted
from callvault.observability import logger

URL_ENV = "NOTIFY_URL"
QUEUE_URL_ENV = "NOTIFY_QUEUE_URL"
BACKOFF_ENV = "NOTIFY_BACKOFF_SECONDS"
BACKOFF_MAX_ENV = "NOTIFY_BACKOFF_MAX_SECONDS"
TIMEOUT_ENV = "NOTIFY_TIMEOUT_SECONDS"
DEFAULT_BACKOFF_SECONDS = 30.0
DEFAULT_BACKOFF_MAX_SECONDS = 3600.0
DEFAULT_TIMEOUT_SECONDS = 10.0
SQS_MAX_VISIBILITY_SECONDS = 43_200
_USER_AGENT = "callvault-events/1 (+https://github.com/callvault)"


class DeliveryFailed(Exception):
    """The receiver did not take the event (the reason names no secret and no body)."""


@dataclass(frozen=True)
class Webhook:
    """One POST: its id, body and signed headers."""

    id: str
    body: bytes
    headers: dict[str, str]


def body_of(event: Mapping[str, Any]) -> bytes:
    """The webhook body for an EventBridge event (the envelope the bus hands the queue)."""
    detail = event["detail"]
    return json.dumps({"type": detail["type"], "timestamp": event["time"], "data": detail}, separators=(",", ":")).encode()


def signed(event: Mapping[str, Any], secrets: Sequence[str], now: datetime | None = None) -> Webhook:
    """`event` as a Standard Webhooks POST, signed with each of `secrets` (`whsec_...`)."""
    from standardwebhooks import Webhook as Signer

    if not secrets:
        raise DeliveryFailed("no signing secret configured")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    ident = str(event["detail"]["id"])
    body = body_of(event)
    try:
        signatures = [Signer(secret).sign(ident, moment, body.decode()) for secret in secrets]
    except Exception as exc:  # not base64 after `whsec_`, or empty: say what, never the value
        raise DeliveryFailed(f"the signing secret is not a whsec_ secret ({type(exc).__name__})") from None
    headers = {
        "content-type": "application/json",
        "webhook-id": ident,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": " ".join(signatures),
        "user-agent": _USER_AGENT,
    }
    return Webhook(ident, body, headers)


def post(url: str, webhook: Webhook, *, timeout: float, allow_loopback: bool) -> int:
    """POST `webhook` to `url` (checked as a recording URL is: https, public addresses only, no
    redirect followed); the status when 2xx, else DeliveryFailed."""
    import urllib3
    from urllib3.util import Timeout

    try:
        target = vetted(url, allow_loopback=allow_loopback)
    except DownloadError as exc:
        raise DeliveryFailed(exc.reason) from None
    connection = pool(
        target.parts.scheme, target.host, target.address, target.port, Timeout(connect=min(5.0, timeout), read=timeout)
    )
    try:
        response = connection.urlopen(
            "POST",
            target.request_target,
            body=webhook.body,
            headers={**webhook.headers, "Host": target.host_header},
            redirect=False,
            retries=False,
            preload_content=False,
        )
    except urllib3.exceptions.HTTPError as exc:
        raise DeliveryFailed(f"POST failed: {type(exc).__name__}") from None
    status = int(response.status)
    response.drain_conn()
    response.release_conn()
    if not 200 <= status < 300:
        raise DeliveryFailed(f"HTTP {status}")
    return status


def backoff_seconds(receive_count: int) -> int:
    """How long a failed delivery stays hidden before its next try: doubling from the base, capped."""
    base = float(os.environ.get(BACKOFF_ENV) or DEFAULT_BACKOFF_SECONDS)
    cap = float(os.environ.get(BACKOFF_MAX_ENV) or DEFAULT_BACKOFF_MAX_SECONDS)
    return int(min(base * 2 ** max(receive_count - 1, 0), cap, SQS_MAX_VISIBILITY_SECONDS))


def deliver(event: Mapping[str, Any]) -> int:
    """Sign and POST one bus event to the configured URL; its status, or DeliveryFailed."""
    from callvault.secrets import notify_secrets

    url = os.environ.get(URL_ENV, "")
    if not url:
        raise DeliveryFailed("no NOTIFY_URL configured")
    timeout = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_SECONDS)
    return post(url, signed(event, notify_secrets()), timeout=timeout, allow_loopback=settings().recording_allow_loopback)


def handle_batch(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """An SQS batch (Lambda's SQS event records): each delivered, or hidden for its backoff and
    reported failed (ReportBatchItemFailures), so SQS tries it again later."""
    from callvault import aws

    failures = []
    for record in records:
        started = time.monotonic()
        event = json.loads(record["body"])
        receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", 1))
        try:
            status = deliver(event)
        except DeliveryFailed as exc:
            delay = backoff_seconds(receives)
            logger.warning(
                "webhook not delivered", id=event.get("detail", {}).get("id"), reason=str(exc), attempt=receives, retry_in=delay
            )
            failures.append({"itemIdentifier": record["messageId"]})
            aws.sqs().change_message_visibility(
                QueueUrl=os.environ[QUEUE_URL_ENV], ReceiptHandle=record["receiptHandle"], VisibilityTimeout=delay
            )
            continue
        elapsed = round((time.monotonic() - started) * 1000)
        logger.info("webhook delivered", id=event["detail"]["id"], status=status, attempt=receives, ms=elapsed)
    return {"batchItemFailures": failures}
