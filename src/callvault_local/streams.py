"""Lambda's DynamoDB stream event source, locally: what `make dev` and the tests use to run the
stream-triggered functions of `template.yaml` against moto.

Reads the table's stream through boto3 (so it works against moto in-process or moto's endpoint),
applies the event source's filter pattern, invokes the handler in batches of its BatchSize,
retries the records it reports as failed (ReportBatchItemFailures) up to MaximumRetryAttempts,
and then sets them aside as dead letters, as the on-failure destination would.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from callvault_local.apigw import LambdaContext
from callvault_local.functions import load_handler
from callvault_local.template import TEMPLATE, load


@dataclass(frozen=True)
class StreamFunction:
    """A function of the template with a DynamoDB stream event."""

    name: str
    code_uri: Path
    handler: str
    batch_size: int
    max_retries: int
    parallelization: int
    patterns: tuple[dict[str, Any], ...]


def stream_functions(path: Path = TEMPLATE) -> list[StreamFunction]:
    found = []
    for name, resource in load(path)["Resources"].items():
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
                    patterns=tuple(json.loads(f["Pattern"]) for f in filters),
                )
            )
    return found


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Lambda event filtering for the forms the template uses: nested objects and lists of
    allowed values. Anything else is refused loudly rather than matched wrongly."""
    for key, wanted in pattern.items():
        value = event.get(key) if isinstance(event, dict) else None
        if isinstance(wanted, dict):
            if not isinstance(value, dict) or not matches(wanted, value):
                return False
        elif isinstance(wanted, list):
            if any(isinstance(option, dict) for option in wanted):
                raise NotImplementedError(f"filter operator in {wanted!r} is not supported locally")
            if value not in wanted:
                return False
        else:
            raise NotImplementedError(f"filter value {wanted!r} is not a list or object")
    return True


@dataclass
class StreamDelivery:
    """Delivers one table's stream to one function, like Lambda's event source mapping."""

    function: StreamFunction
    table_name: str
    backoff_seconds: float = 1.0
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    log: Callable[[str], None] = print
    _iterators: dict[str, str] = field(default_factory=dict)
    _invoking: threading.Lock = field(default_factory=threading.Lock)

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
            records += [{**r, "eventSourceARN": stream_arn} for r in page["Records"]]
        return records

    def poll(self) -> int:
        """Deliver every record written since the last poll; the number delivered.

        Records of one item (one session) go in order; different items go side by side, up to
        the event source's ParallelizationFactor, so one item's retry waits do not hold up the rest.
        """
        from concurrent.futures import ThreadPoolExecutor

        patterns = self.function.patterns
        records = [r for r in self._new_records() if not patterns or any(matches(p, r) for p in patterns)]
        by_item: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            by_item.setdefault(json.dumps(record["dynamodb"]["Keys"], sort_keys=True), []).append(record)
        with ThreadPoolExecutor(max_workers=self.function.parallelization) as pool:
            list(pool.map(self._deliver_in_order, by_item.values()))
        return len(records)

    def _deliver_in_order(self, records: list[dict[str, Any]]) -> None:
        handler = load_handler(self.function.code_uri, self.function.handler, self.function.name)
        for start in range(0, len(records), self.function.batch_size):
            batch = records[start : start + self.function.batch_size]
            for attempt in range(self.function.max_retries + 1):
                try:
                    with self._invoking:  # one invocation at a time: a handler's module state is one container's
                        reply = handler({"Records": batch}, LambdaContext(self.function.name, timeout_ms=300_000)) or {}
                    failed = {f["itemIdentifier"] for f in reply.get("batchItemFailures", [])}
                except Exception:  # a function error (Powertools: every record failed) fails the whole batch, as in Lambda
                    failed = {r["dynamodb"]["SequenceNumber"] for r in batch}
                batch = [r for r in batch if r["dynamodb"]["SequenceNumber"] in failed]
                if not batch:
                    break
                if attempt < self.function.max_retries:
                    retries = self.function.max_retries
                    self.log(f"{self.function.name}: {len(batch)} record(s) failed; retry {attempt + 1} of {retries}")
                    time.sleep(self.backoff_seconds * 2**attempt)
            if batch:
                self.dead_letters += batch
                retries = self.function.max_retries
                self.log(f"{self.function.name}: {len(batch)} record(s) to the dead-letter queue after {retries} retries")


def deliveries(table_name: str, path: Path = TEMPLATE, **options: Any) -> list[StreamDelivery]:
    """One delivery per stream-triggered function of the template."""
    return [StreamDelivery(function, table_name, **options) for function in stream_functions(path)]
