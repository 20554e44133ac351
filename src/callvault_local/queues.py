"""The template's SQS queues in the local stack, and Lambda's SQS event source for the functions
that read them.

A queue is named by its logical id (`ErasureQueue`, `NotifyQueue`): deployed.py resolves `!Ref`
and `!GetAtt` to the same names, so nothing maps one name to another. Its redrive policy (and the
dead-letter queue it names) and visibility timeout come from the template.

`start(session, stopped, log)` is `make dev`'s: every function with an SQS event on a queue the
template always creates (the erasure queue; the notify queue, created only with a notify URL, is
bus.py's) gets its queue, its queue's URL in the variable its template environment takes it from,
and a daemon thread polling for it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from callvault_local.apigw import LambdaContext
from callvault_local.functions import load_handler
from callvault_local.template import TEMPLATE, load

# A separate instance of the function's module (functions.load_handler): the queue's invocations
# do not share a container with the API's, as they would not in AWS.
QUEUE_CONTAINER = 1


def create(sqs: Any, logical_id: str) -> tuple[str, str]:
    """The queue `logical_id` of the template (its dead-letter queue first), named by its logical
    id, with the template's redrive policy and visibility timeout; its URL and ARN."""
    props = load()["Resources"][logical_id].get("Properties", {})
    attributes: dict[str, str] = {}
    if "VisibilityTimeout" in props:
        attributes["VisibilityTimeout"] = str(props["VisibilityTimeout"])
    redrive = props.get("RedrivePolicy")
    if redrive:
        dead_letters = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        _, dead_arn = create(sqs, dead_letters)
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": redrive["maxReceiveCount"]})
    url: str = sqs.create_queue(QueueName=logical_id, Attributes=attributes)["QueueUrl"]
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _timeout_ms(function: str) -> int:
    template = load()
    default = template.get("Globals", {}).get("Function", {}).get("Timeout", 3)
    return int(float(template["Resources"][function]["Properties"].get("Timeout", default)) * 1000)


@dataclass
class SqsEventSource:
    """Lambda's SQS event source (BatchSize 1, ReportBatchItemFailures) for the template's
    `function`, against a local queue: receive, invoke, delete what the function did not report failed."""

    queue_url: str
    function: str
    log: Callable[[str], None] = print
    stopped: threading.Event = field(default_factory=threading.Event)
    interval: float = 0.2
    handled_line: str = "message handled"
    failed_line: str = "message failed"

    def __post_init__(self) -> None:
        props = load()["Resources"][self.function]["Properties"]
        self._handler = load_handler(TEMPLATE.parent / props["CodeUri"], props["Handler"], self.function, QUEUE_CONTAINER)
        self._timeout_ms = _timeout_ms(self.function)

    def poll(self) -> int:
        """Receive and hand on what is visible now (one message per invocation, as BatchSize 1);
        the number of messages handled."""
        import boto3

        sqs = boto3.client("sqs")
        handled = 0
        while True:
            messages = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=1, AttributeNames=["ApproximateReceiveCount"]
            ).get("Messages", [])
            if not messages:
                return handled
            for message in messages:
                record: dict[str, Any] = {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": message.get("Attributes", {}),
                    "eventSource": "aws:sqs",
                }
                reply = self._handler({"Records": [record]}, LambdaContext(self.function, timeout_ms=self._timeout_ms)) or {}
                failed = {f["itemIdentifier"] for f in reply.get("batchItemFailures", [])}
                if message["MessageId"] in failed:
                    attempt = record["attributes"].get("ApproximateReceiveCount")
                    self.log(f"{self.function}: {self.failed_line} (attempt {attempt})")
                else:  # as the event source does: a handled message is deleted
                    sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                    self.log(f"{self.function}: {self.handled_line}")
                handled += 1

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.poll()
            except Exception as exc:  # keep polling: one bad poll must not stop the function
                self.log(f"{self.function}: poll failed: {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class QueueFunction:
    """A function of the template with an SQS event."""

    function: str
    queue: str  # the queue's logical id


def queue_functions() -> list[QueueFunction]:
    """Every function's SQS event whose queue the template always creates (no Condition)."""
    resources = load()["Resources"]
    found = []
    for name, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event.get("Type") == "SQS":
                queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                if "Condition" not in resources[queue]:
                    found.append(QueueFunction(name, queue))
    return found


def _point_at(function: str, queue: str, url: str, environ: MutableMapping[str, str]) -> None:
    """Set each variable of `function`'s template environment that is `!Ref queue` to `url`."""
    variables = load()["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
    for name, value in variables.items():
        if value == {"Ref": queue}:
            environ[name] = url


# What each queue-fed function's log lines say of a message (else the generic words).
_LINES = {"SessionsEraseFunction": ("erasure continued", "erasure not finished, left to the queue's redelivery")}


def start(
    session: Any, stopped: threading.Event, log: Callable[[str], None], environ: MutableMapping[str, str] = os.environ
) -> list[SqsEventSource]:
    """`make dev`'s queue-fed functions: each queue created, its URL where the function reads it,
    and a daemon thread polling it for the function."""
    sqs = session.client("sqs")
    sources = []
    for fed in queue_functions():
        url, _ = create(sqs, fed.queue)
        _point_at(fed.function, fed.queue, url, environ)
        handled, failed = _LINES.get(fed.function, ("message handled", "message failed"))
        source = SqsEventSource(url, fed.function, log=log, stopped=stopped, handled_line=handled, failed_line=failed)
        threading.Thread(target=source.run, name=f"{fed.function}-queue-poll", daemon=True).start()
        sources.append(source)
    return sources
