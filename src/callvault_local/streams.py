"""Lambda's DynamoDB stream event source, locally: what `make dev` and the tests use to run the
stream-triggered functions of `template.yaml` against moto.

Reads the table's stream through boto3 (so it works against moto in-process or moto's endpoint)
and behaves as the event source mapping does:
- filtering: the FilterCriteria patterns of the template (ORed), with the operators it uses
  (`exists`, `anything-but`) on NewImage/OldImage, as Lambda event filtering matches them;
- ordering and concurrency: one item's records in order, up to ParallelizationFactor items at
  once, each worker with its own instance of the handler's module (a container of its own);
- the function's timeout (`Timeout`, the template's or its Globals'): an invocation still running
  at it fails as Lambda's "Task timed out" does (its thread is left behind, as a stopped sandbox
  would be: it must hold nothing the retry needs), and so does one whose thread dies of anything
  (a crash: SystemExit, an error the runtime would not survive);
- retries: a batch item failure (ReportBatchItemFailures) retries the batch from the first
  failed record, a function error retries it split in two (BisectBatchOnFunctionError), up to
  MaximumRetryAttempts, then the records go to the dead letters, as to the on-failure destination.
Every wait watches `stopped`, and every thread is a daemon: stopping never waits on a retry.
"""

from __future__ import annotations

import contextvars
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from callvault_local.apigw import LambdaContext
from callvault_local.functions import Handler, load_handler
from callvault_local.template import TEMPLATE, load

_MISSING = object()


@dataclass(frozen=True)
class StreamFunction:
    """A function of the template with a DynamoDB stream event."""

    name: str
    code_uri: Path
    handler: str
    batch_size: int
    max_retries: int
    parallelization: int
    bisect: bool
    patterns: tuple[dict[str, Any], ...]
    timeout_seconds: float = 3.0  # Lambda's default

    def accepts(self, record: dict[str, Any]) -> bool:
        """Whether the event source passes `record` to the function (no filters: every record)."""
        return not self.patterns or any(matches(pattern, record) for pattern in self.patterns)


def stream_functions(path: Path = TEMPLATE) -> list[StreamFunction]:
    found = []
    template = load(path)
    default_timeout = template.get("Globals", {}).get("Function", {}).get("Timeout", 3)
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        for event in props.get("Events", {}).values():
            if event.get("Type") != "DynamoDB":
                continue
            source = event["Properties"]
            filters = source.get("FilterCriteria", {}).get("Filters", [])
            found.append(
                StreamFunction(
                    name=name,
                    code_uri=path.parent / props["CodeUri"],
                    handler=props["Handler"],
                    batch_size=int(source.get("BatchSize", 100)),
                    max_retries=int(source.get("MaximumRetryAttempts", 2)),
                    parallelization=int(source.get("ParallelizationFactor", 1)),
                    bisect=bool(source.get("BisectBatchOnFunctionError", False)),
                    patterns=tuple(_checked(json.loads(f["Pattern"])) for f in filters),
                    timeout_seconds=float(props.get("Timeout", default_timeout)),
                )
            )
    return found


def _checked(pattern: dict[str, Any]) -> dict[str, Any]:
    """`pattern` if every matcher in it is one `matches` implements; else NotImplementedError at
    load, rather than a record matched wrongly later."""
    for wanted in pattern.values():
        if isinstance(wanted, dict):
            _checked(wanted)
        elif isinstance(wanted, list):
            for option in wanted:
                if isinstance(option, dict) and not (
                    (set(option) == {"exists"} and isinstance(option["exists"], bool))
                    or (set(option) == {"anything-but"} and all(_is_scalar(v) for v in _options(option["anything-but"])))
                ):
                    raise NotImplementedError(f"filter operator {option!r} is not supported locally")
                if not isinstance(option, dict) and not _is_scalar(option):
                    raise NotImplementedError(f"filter value {option!r} is not supported locally")
        else:
            raise NotImplementedError(f"filter value {wanted!r} is not a list or object")
    return pattern


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _options(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def matches(pattern: dict[str, Any], event: Any) -> bool:
    """Lambda event filtering (EventBridge pattern rules) for the forms `_checked` allows.

    Every key of the pattern must match (AND); a list holds alternatives (OR). A list matches
    only a leaf, a scalar value: an object where a leaf is expected counts as missing, which is
    why the DynamoDB forms name the type (`{"recording_state": {"S": [...]}}`). A missing field
    matches nothing but `{"exists": false}`; `anything-but` needs the field present.
    """
    for key, wanted in pattern.items():
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(wanted, dict):
            if not matches(wanted, value if isinstance(value, dict) else {}):
                return False
        elif not any(_leaf_matches(option, value) for option in wanted):
            return False
    return True


def _leaf_matches(option: Any, value: Any) -> bool:
    present = value is not _MISSING and _is_scalar(value)
    if isinstance(option, dict):
        if "exists" in option:
            return present is option["exists"]
        return present and value not in _options(option["anything-but"])
    return present and value == option and type(value) is type(option)


@dataclass
class StreamDelivery:
    """Delivers one table's stream to one function, like Lambda's event source mapping.

    `poll()` delivers what the stream holds now and returns when it is all handled (the tests);
    `run()` keeps polling until `stopped` (`make dev`), records handled meanwhile by the workers.
    """

    function: StreamFunction
    table_name: str
    backoff_seconds: float = 1.0
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    log: Callable[[str], None] = print
    stopped: threading.Event = field(default_factory=threading.Event)
    _iterators: dict[str, str] = field(default_factory=dict)
    # Records waiting, by item, in stream order; the items a worker holds; both under _changed.
    _lanes: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)
    _busy: set[str] = field(default_factory=set)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _workers: list[threading.Thread] = field(default_factory=list)

    @cached_property
    def _streams(self) -> Any:
        """The stream client, made once: the poller asks every half second."""
        import boto3
        from botocore.config import Config

        # botocore >= 1.37 sends a stream ARN's requests to `{account}.streams-ddb...`, a host moto does not route.
        return boto3.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))

    @cached_property
    def _stream_arn(self) -> str:
        import boto3

        arn: str = boto3.client("dynamodb").describe_table(TableName=self.table_name)["Table"]["LatestStreamArn"]
        return arn

    def _new_records(self) -> list[dict[str, Any]]:
        stream_arn, client = self._stream_arn, self._streams
        records: list[dict[str, Any]] = []
        for shard in client.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = client.get_shard_iterator(
                    StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            page = client.get_records(ShardIterator=self._iterators[shard_id])
            self._iterators[shard_id] = page.get("NextShardIterator") or self._iterators[shard_id]
            records += [_as_lambda_gives(r, stream_arn) for r in page["Records"]]
        return records

    def enqueue(self) -> int:
        """Read the records written since the last read and queue those the filters pass for the
        workers (started on first use); the number queued."""
        records = [r for r in self._new_records() if self.function.accepts(r)]
        with self._changed:
            for record in records:
                self._lanes.setdefault(json.dumps(record["dynamodb"]["Keys"], sort_keys=True), deque()).append(record)
            while len(self._workers) < self.function.parallelization:
                worker = threading.Thread(
                    target=self._work, args=(len(self._workers),), name=f"{self.function.name}-{len(self._workers)}", daemon=True
                )
                self._workers.append(worker)
                worker.start()
            self._changed.notify_all()
        return len(records)

    def poll(self) -> int:
        """Deliver every record written since the last poll, retries included; the number delivered."""
        # Read as Lambda's event source reads, outside any function's invocation (a test may poll
        # from inside one, as a delivery racing another function's work).
        delivered = contextvars.Context().run(self.enqueue)
        with self._changed:
            self._changed.wait_for(lambda: self.stopped.is_set() or not (self._lanes or self._busy))
        return delivered

    def run(self, interval: float = 0.5) -> None:
        """Poll every `interval` seconds until `stopped` (in a thread of its own)."""
        while not self.stopped.wait(interval):
            try:
                delivered = self.enqueue()
            except Exception as exc:  # keep polling: one bad poll must not stop recordings for the session
                self.log(f"{self.function.name}: stream poll failed: {type(exc).__name__}: {exc}")
                continue
            if delivered:
                self.log(f"{self.function.name}: {delivered} stream record(s) to deliver")

    def stop(self) -> None:
        self.stopped.set()
        with self._changed:
            self._changed.notify_all()

    def _next_batch(self) -> tuple[str, list[dict[str, Any]]] | None:
        """The oldest waiting item no other worker holds, and up to BatchSize of its records (under _changed)."""
        for key, lane in self._lanes.items():
            if key not in self._busy:
                self._busy.add(key)
                return key, [lane.popleft() for _ in range(min(self.function.batch_size, len(lane)))]
        return None

    def _work(self, container: int) -> None:
        handler = load_handler(self.function.code_uri, self.function.handler, self.function.name, container)
        while not self.stopped.is_set():
            with self._changed:
                taken = self._next_batch()
                if taken is None:
                    self._changed.wait()
                    continue
            key, batch = taken
            try:
                self._deliver(handler, batch, self.function.max_retries)
            finally:
                with self._changed:
                    self._busy.discard(key)
                    if not self._lanes.get(key):
                        self._lanes.pop(key, None)
                    self._changed.notify_all()

    def _deliver(self, handler: Handler, batch: list[dict[str, Any]], retries_left: int) -> None:
        """Invoke `handler` with `batch` until it succeeds or the retries are spent."""
        while batch and not self.stopped.is_set():
            try:
                reply = self._invoke(handler, batch)
            except Exception:  # a function error (a timeout, a crash): the whole batch failed
                if self.function.bisect and len(batch) > 1 and retries_left > 0:
                    half = len(batch) // 2
                    self.log(f"{self.function.name}: function error on {len(batch)} record(s); retrying in halves")
                    self._deliver(handler, batch[:half], retries_left - 1)
                    self._deliver(handler, batch[half:], retries_left - 1)
                    return
                failed = [r["dynamodb"]["SequenceNumber"] for r in batch]
            else:
                failed = [f["itemIdentifier"] for f in reply.get("batchItemFailures", [])]
            if not failed:
                return
            # As Lambda does: the lowest failed sequence number is the checkpoint; it and every later record go again.
            checkpoint = min(failed, key=int)
            batch = [r for r in batch if int(r["dynamodb"]["SequenceNumber"]) >= int(checkpoint)]
            if retries_left == 0:
                self.dead_letters += batch
                retries = self.function.max_retries
                self.log(f"{self.function.name}: {len(batch)} record(s) to the dead-letter queue after {retries} retries")
                return
            attempt = self.function.max_retries - retries_left
            self.log(f"{self.function.name}: {len(batch)} record(s) failed; retry {attempt + 1} of {self.function.max_retries}")
            retries_left -= 1
            self.stopped.wait(self.backoff_seconds * 2**attempt)

    def _invoke(self, handler: Handler, batch: list[dict[str, Any]]) -> dict[str, Any]:
        """One invocation, as Lambda runs it: the handler's reply, or an exception when it raised,
        died (whatever it raised: a crash) or ran past the function's timeout."""
        timeout = self.function.timeout_seconds
        outcome: dict[str, Any] = {}

        def run() -> None:
            context = LambdaContext(self.function.name, timeout_ms=int(timeout * 1000))
            try:
                outcome["reply"] = handler({"Records": batch}, context) or {}
            except BaseException as exc:  # a crash ends the invocation, not the runner
                outcome["error"] = exc

        invocation = threading.Thread(target=run, name=f"{self.function.name}-invocation", daemon=True)
        invocation.start()
        ends = time.monotonic() + timeout
        while invocation.is_alive() and time.monotonic() < ends and not self.stopped.is_set():
            invocation.join(min(0.5, max(0.0, ends - time.monotonic())))
        if invocation.is_alive():
            self.log(f"{self.function.name}: Task timed out after {timeout:.2f} seconds")
            raise TimeoutError(f"Task timed out after {timeout:.2f} seconds")
        if "error" in outcome:
            error = outcome["error"]
            raise error if isinstance(error, Exception) else RuntimeError(f"Runtime exited: {type(error).__name__}")
        reply: dict[str, Any] = outcome["reply"]
        return reply


def _as_lambda_gives(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A record as Lambda hands it to a function: with its stream's ARN, and its creation time in
    epoch seconds (a number in the event's JSON, where boto3 parses a datetime)."""
    stream = dict(record["dynamodb"])
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        stream["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "dynamodb": stream, "eventSourceARN": stream_arn}


def deliveries(table_name: str, path: Path = TEMPLATE, *, only: str | None = None, **options: Any) -> list[StreamDelivery]:
    """One delivery per stream-triggered function of the template (or of the one named `only`)."""
    return [StreamDelivery(f, table_name, **options) for f in stream_functions(path) if only in (None, f.name)]
