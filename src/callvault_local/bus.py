"""Events out, locally (DESIGN.md "Events out"): the bus in moto, a queue to watch it, and the
outbound webhooks' queue and sender.

- the bus `callvault-events`, with a rule sending every `callvault` event to the queue
  `callvault-events-watch` (`callvault events` prints what arrives there, one JSON per line);
- with `CALLVAULT_NOTIFY_URL` set: the rule and queues of the template's NotifyRule, NotifyQueue
  (its maxReceiveCount) and NotifyDeadLetterQueue, and a thread doing what Lambda's SQS event
  source does for NotifyFunction: receive, invoke the template's handler, delete what it delivered.
  A failed delivery waits its backoff on the queue (short ones locally: NOTIFY_BACKOFF_SECONDS).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callvault_local import queues
from callvault_local.stack import LOCAL_BUS, NOTIFY_DEAD_LETTER_QUEUE, NOTIFY_QUEUE, WATCH_QUEUE
from callvault_local.template import load

# What `make dev` signs with when CALLVAULT_NOTIFY_SECRET is not set (printed at start).
DEV_NOTIFY_SECRET = "whsec_" + base64.b64encode(b"callvault-dev-notify-secret!").decode()
EVENT_PATTERN = {"source": ["callvault"]}


@dataclass(frozen=True)
class LocalBus:
    bus_name: str
    watch_queue_url: str
    notify_queue_url: str | None = None
    dead_letter_queue_url: str | None = None


def _queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _route(events: Any, rule: str, queue_arn: str) -> None:
    events.put_rule(Name=rule, EventBusName=LOCAL_BUS, EventPattern=json.dumps(EVENT_PATTERN))
    events.put_targets(Rule=rule, EventBusName=LOCAL_BUS, Targets=[{"Id": rule, "Arn": queue_arn}])


def notify_queue_settings() -> dict[str, Any]:
    """The template's NotifyQueue properties (what the local queue copies)."""
    props: dict[str, Any] = load()["Resources"]["NotifyQueue"]["Properties"]
    return props


def create(session: Any, *, notify: bool) -> LocalBus:
    """The bus, the watch queue and, when `notify`, the outbound webhooks' queues, in moto."""
    events, sqs = session.client("events"), session.client("sqs")
    events.create_event_bus(Name=LOCAL_BUS)
    watch_url, watch_arn = _queue(sqs, WATCH_QUEUE)
    _route(events, WATCH_QUEUE, watch_arn)
    if not notify:
        return LocalBus(LOCAL_BUS, watch_url)
    notify_url, notify_arn = queues.create(sqs, NOTIFY_QUEUE)  # its dead-letter queue too
    _route(events, NOTIFY_QUEUE, notify_arn)
    dead_url = sqs.get_queue_url(QueueName=NOTIFY_DEAD_LETTER_QUEUE)["QueueUrl"]
    return LocalBus(LOCAL_BUS, watch_url, notify_url, dead_url)


@dataclass
class NotifySender(queues.SqsEventSource):
    """Lambda's SQS event source for the template's NotifyFunction, against the local queue."""

    function: str = "NotifyFunction"
    handled_line: str = "webhook delivered"
    failed_line: str = "delivery failed"


def configure(local: LocalBus, environ: Any = os.environ) -> None:
    """The environment the template gives SessionChangesFunction and NotifyFunction, locally."""
    environ["EVENT_BUS_NAME"] = local.bus_name
    if local.notify_queue_url:
        environ["NOTIFY_URL"] = environ["CALLVAULT_NOTIFY_URL"]
        environ["NOTIFY_QUEUE_URL"] = local.notify_queue_url
        environ.setdefault("CALLVAULT_NOTIFY_SECRET", DEV_NOTIFY_SECRET)
        environ.setdefault("NOTIFY_BACKOFF_SECONDS", "1")  # 1, 2, 4 s ... instead of 30 s, 1 min ...
        environ.setdefault("NOTIFY_BACKOFF_MAX_SECONDS", "8")


def start(session: Any, stopped: threading.Event, log: Callable[[str], None]) -> LocalBus:
    """`make dev`'s events out: the bus (and, with CALLVAULT_NOTIFY_URL, the sender, in a daemon thread)."""
    local = create(session, notify=bool(os.environ.get("CALLVAULT_NOTIFY_URL")))
    configure(local)
    if local.notify_queue_url:
        sender = NotifySender(local.notify_queue_url, log=log, stopped=stopped)
        threading.Thread(target=sender.run, name="NotifyFunction-poll", daemon=True).start()
    return local


def banner_lines(local: LocalBus, flags: str = "") -> list[str]:
    """`flags`: the port options of the stack the banner is for (`--port N --moto-port M`, or none)."""
    lines = [
        f"Events out: bus {local.bus_name} (every event also in the queue {WATCH_QUEUE}): watch with `callvault events{flags}`"
    ]
    if local.notify_queue_url:
        lines.append(
            f"Outbound webhooks: POST {os.environ['NOTIFY_URL']}, signed with {os.environ['CALLVAULT_NOTIFY_SECRET']}"
            " (CALLVAULT_NOTIFY_SECRET to change)"
        )
    return lines


def watch(print_line: Callable[[str], None], stopped: threading.Event, *, count: int | None = None) -> int:
    """Print each event as it reaches the watch queue (one JSON per line), taking it off the queue;
    until `stopped` or `count` printed. The number printed."""
    import boto3

    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=WATCH_QUEUE)["QueueUrl"]
    printed = 0
    while not stopped.is_set() and (count is None or printed < count):
        wanted = 10 if count is None else min(10, count - printed)  # the rest stay for the next watcher
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=wanted, WaitTimeSeconds=1).get("Messages", []):
            print_line(json.dumps(json.loads(message["Body"]), separators=(",", ":")))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            printed += 1
    return printed


def redrive() -> int:
    """Send every outbound webhook waiting in the dead-letter queue back to the notify queue (each
    tried again from the start of its backoff); the number moved."""
    import boto3

    sqs = boto3.client("sqs")
    dead = sqs.get_queue_url(QueueName=NOTIFY_DEAD_LETTER_QUEUE)["QueueUrl"]
    target = sqs.get_queue_url(QueueName=NOTIFY_QUEUE)["QueueUrl"]
    moved = 0
    while messages := sqs.receive_message(QueueUrl=dead, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.send_message(QueueUrl=target, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=dead, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved
