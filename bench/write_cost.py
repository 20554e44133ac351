"""Write-cost benchmark: DynamoDB write units per event, and dollars per million events.

    make bench        (or: uv run python -m bench.write_cost)

Plays whole calls through the real webhook handlers on moto - a 30-turn and a 200-turn cozmox
call (status updates, one conversation-update per turn with a 2 KB system prompt, the
end-of-call report), one speaknode and one agentsessions event - and meters every AWS request
the handlers make. Write units are computed with DynamoDB's own rules from the item as it was
before and after each write (read back from moto, outside the meter):

- an item's size is the UTF-8 length of its attribute names plus its values (numbers: about one
  byte per two digits, plus one; maps and lists: 3 bytes plus their elements, plus one byte per
  element);
- a write costs 1 unit per started KB of the larger of the before and after item, at least 1;
  inside TransactWriteItems twice that; a transaction cancelled by a condition is counted as if
  it had written the items as they stood (AWS bills cancelled transactions);
- each global secondary index whose key attributes the write adds, changes or removes costs one
  more unit per index entry written or deleted (a change is a delete and a put; the indexes are
  keys-only, so an index entry is far below 1 KB); an index whose keys stay the same costs nothing.

The dollar figures use the prices below (AWS us-east-1, on-demand, as published in 2025); change
them here to price another region. Lambda time is the handler's own time measured here (AWS
calls excluded) plus an assumed round-trip per AWS call, as moto's in-process latency is not AWS's.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/callvault"), str(ROOT / "src")]

from bench.dynamodb_units import item_size, read_units, write_units  # noqa: E402
from callvault_local.offline import isolate  # noqa: E402

isolate(
    "bench",
    POWERTOOLS_LOG_LEVEL="INFO",  # as deployed (template.yaml): the log lines are part of the cost
    CALLVAULT_SECRET_COZMOX="bench-secret",
    CALLVAULT_SECRET_SPEAKNODE="bench-secret",
    CALLVAULT_SECRET_AGENTSESSIONS="bench-secret",
)

# -- prices (USD, us-east-1, 2025) ----------------------------------------------------------------
API_PER_REQUEST = 1.00 / 1e6  # HTTP API, first 300 M a month; metered per 512 KB of request
API_METER_BYTES = 512 * 1024
LAMBDA_PER_GB_SECOND = 0.0000133334  # arm64
LAMBDA_PER_REQUEST = 0.20 / 1e6
LAMBDA_MEMORY_GB = 512 / 1024  # template.yaml Globals MemorySize
DYNAMODB_PER_WRITE_UNIT = 0.625 / 1e6  # on-demand write request unit
DYNAMODB_PER_READ_UNIT = 0.125 / 1e6  # on-demand read request unit
S3_PER_PUT = 0.005 / 1000  # PUT, COPY, POST, LIST
S3_PER_GET = 0.0004 / 1000
S3_PER_GB_MONTH = 0.023  # Standard; one month of the bytes stored is counted
LOGS_PER_GB = 0.50  # CloudWatch Logs ingestion (standard class)
LOGS_BYTES_PER_LINE = 26  # CloudWatch bills each log event's bytes plus 26
LAMBDA_PLATFORM_LOG_BYTES = 350  # START, END, REPORT and the X-Ray line of each invocation
# Assumed AWS round trips from Lambda in the same region, milliseconds (billed Lambda time).
AWS_CALL_MS = {"PutObject": 25.0, "GetObject": 15.0, "TransactWriteItems": 12.0, "UpdateItem": 8.0, "Query": 8.0}
AWS_CALL_MS_DEFAULT = 8.0

SYSTEM_PROMPT = (
    "You are Ava, the front desk of Acme Bistro, a busy restaurant. Greet the caller warmly, find out what they "
    "need and help them book, change or cancel a table. Ask for the party size, the date and time, a name and a "
    "phone number, and read the booking back before you confirm it. Offer the nearest free slot when the time "
    "asked for is taken. Opening hours are 11:30 to 23:00, the kitchen closes at 22:15, groups above eight need "
    "a deposit and are handled by the events team. Never promise a window table. Keep answers short and "
    "friendly; one question at a time. If the caller asks about allergies, say the kitchen can adapt most dishes "
    "and that a note will be added to the booking. Use the check_availability tool before offering a time and "
    "book_table to confirm. Transfer to a human when the caller asks for one or is upset. "
) * 3  # about 2 KB, as a production prompt is

USER_LINES = [
    "Hi, I'd like to book a table for Saturday evening if you have anything.",
    "Four people, around eight o'clock would be ideal.",
    "The name is Morgan, and my number is the one I'm calling from.",
    "Actually, one of us is vegetarian - is that a problem?",
    "Great. Could we also have a high chair for a toddler?",
]
BOT_LINES = [
    "Of course! Let me check what we have for Saturday evening. How many people will be joining you?",
    "Eight o'clock for four on Saturday is available. May I have a name for the booking?",
    "Thank you, Morgan. I have four people on Saturday at 8pm. Shall I confirm that?",
    "Not at all - the kitchen has several vegetarian mains and can adapt most dishes. I'll add a note.",
    "Yes, I've added a high chair to the booking. Is there anything else I can help you with?",
]


# -- the meter ------------------------------------------------------------------------------------


@dataclass
class Usage:
    """What one request cost: AWS calls, DynamoDB units, bytes, time."""

    calls: Counter[str] = field(default_factory=Counter)
    table_units: float = 0.0
    index_units: float = 0.0
    read_units: float = 0.0
    s3_put_bytes: int = 0
    s3_get_bytes: int = 0
    aws_ms: float = 0.0
    meter_ms: float = 0.0
    own_ms: float = 0.0
    log_bytes: int = 0
    log_lines: int = 0
    request_bytes: int = 0
    session_bytes: int = 0

    @property
    def write_units(self) -> float:
        return self.table_units + self.index_units

    def lambda_ms(self) -> float:
        return math.ceil(self.own_ms + sum(AWS_CALL_MS.get(op, AWS_CALL_MS_DEFAULT) * n for op, n in self.calls.items()))

    def dollars(self) -> dict[str, float]:
        gb_seconds = LAMBDA_MEMORY_GB * self.lambda_ms() / 1000
        return {
            "api": API_PER_REQUEST * max(1, math.ceil(self.request_bytes / API_METER_BYTES)),
            "lambda": LAMBDA_PER_REQUEST + gb_seconds * LAMBDA_PER_GB_SECOND,
            "dynamodb": self.write_units * DYNAMODB_PER_WRITE_UNIT + self.read_units * DYNAMODB_PER_READ_UNIT,
            "s3": self.calls["PutObject"] * S3_PER_PUT
            + self.calls["GetObject"] * S3_PER_GET
            + self.s3_put_bytes / 1e9 * S3_PER_GB_MONTH,
            "logs": (self.log_bytes + LAMBDA_PLATFORM_LOG_BYTES + LOGS_BYTES_PER_LINE * (self.log_lines + 3)) / 1e9 * LOGS_PER_GB,
        }


class Meter:
    """Hooks on the handlers' boto3 clients: every request counted and timed, every DynamoDB write
    priced from the items before and after it (read back through a client of its own)."""

    def __init__(self, table: str) -> None:
        import boto3

        self.table = table
        self.observer = boto3.client("dynamodb")  # not metered
        described = self.observer.describe_table(TableName=table)["Table"]
        self.indexes = [[k["AttributeName"] for k in i["KeySchema"]] for i in described.get("GlobalSecondaryIndexes", [])]
        self.usage = Usage()
        self._pending: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        self._started = 0.0

    def attach(self, dynamodb: Any, s3: Any) -> None:
        for client in (dynamodb, s3):
            client.meta.events.register("before-parameter-build", self._before)
            client.meta.events.register("after-call", self._after)

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        started = time.perf_counter()
        item: dict[str, Any] | None = self.observer.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        self.usage.meter_ms += (time.perf_counter() - started) * 1000  # the meter's own reads: not the handler's time
        return item

    @staticmethod
    def _keys(operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        def key_of(op: dict[str, Any]) -> dict[str, Any]:
            return op["Key"] if "Key" in op else {"pk": op["Item"]["pk"], "sk": op["Item"]["sk"]}

        if operation == "TransactWriteItems":
            return [key_of(next(iter(i.values()))) for i in params["TransactItems"]]
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            return [key_of(params)]
        return []

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self._pending = [(key, self._get(key)) for key in self._keys(model.name, params)]
        if model.name == "PutObject":
            body = params.get("Body", b"")
            self.usage.s3_put_bytes += len(body) if isinstance(body, bytes | str) else 0
        self._started = time.perf_counter()

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self.usage.aws_ms += (time.perf_counter() - self._started) * 1000
        operation = model.name
        self.usage.calls[operation] += 1
        ok = http_response.status_code < 300
        factor = 2 if operation == "TransactWriteItems" else 1
        for key, before in self._pending:
            after = self._get(key) if ok else before
            self.usage.table_units += factor * write_units(before, after)
            if ok:
                self.usage.index_units += self._index_units(before, after)
            if key["sk"]["S"] == "SESSION" and after:
                self.usage.session_bytes = item_size(after)
        self._pending = []
        if operation == "GetObject" and ok:
            self.usage.s3_get_bytes += int(parsed.get("ContentLength", 0))
        if operation in ("Query", "BatchGetItem") and ok:
            items = parsed.get("Items") or [i for rows in parsed.get("Responses", {}).values() for i in rows]
            if operation == "Query":  # one read of everything the page returned
                self.usage.read_units += read_units(sum(item_size(i) for i in items), consistent=False)
            else:  # each item read on its own
                self.usage.read_units += sum(read_units(item_size(i), consistent=False) for i in items)

    def _index_units(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
        units = 0
        for keys in self.indexes:
            old = tuple(json.dumps((before or {}).get(k), sort_keys=True) for k in keys) if before else None
            new = tuple(json.dumps((after or {}).get(k), sort_keys=True) for k in keys) if after else None
            had = before is not None and all(k in before for k in keys)
            has = after is not None and all(k in after for k in keys)
            if had and has:
                units += 0 if old == new else 2
            else:
                units += int(had) + int(has)
        return units


@contextlib.contextmanager
def measured(meter: Meter) -> Iterator[Usage]:
    """Meter what runs inside: the usage of exactly that, with the handler's log output counted."""
    from callvault.observability import logger

    usage = meter.usage = Usage()
    buffer = io.StringIO()
    handler = logger.registered_handler
    stream = handler.setStream(buffer)  # type: ignore[attr-defined]
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(buffer):  # EMF metrics are printed
            yield usage
    finally:
        elapsed = (time.perf_counter() - started) * 1000
        handler.setStream(stream)  # type: ignore[attr-defined]
        usage.own_ms = max(0.0, elapsed - usage.aws_ms - usage.meter_ms)
        lines = [line for line in buffer.getvalue().splitlines() if line]
        usage.log_lines = len(lines)
        usage.log_bytes = sum(len(line.encode()) + 1 for line in lines)


# -- traffic --------------------------------------------------------------------------------------


def _payload(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / f"events/payloads/{name}.json").read_text())
    return loaded


def conversation(turns: int) -> list[dict[str, Any]]:
    """The call's messages as cozmox sends them: the system prompt, then user and bot in turn."""
    start = 1795172402000
    messages: list[dict[str, Any]] = [{"role": "system", "message": SYSTEM_PROMPT, "time": start, "secondsFromStart": 0}]
    for turn in range(turns):
        lines, role = (USER_LINES, "user") if turn % 2 else (BOT_LINES, "bot")
        at = start + 1000 + turn * 4000
        messages.append(
            {
                "role": role,
                "message": lines[(turn // 2) % len(lines)],
                "time": at,
                "endTime": at + 3000,
                "secondsFromStart": (at - start) / 1000,
                "duration": 3000,
            }
        )
    return messages


def _openai(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    roles = {"bot": "assistant"}
    return [{"role": roles.get(m["role"], m["role"]), "content": m["message"]} for m in messages]


def cozmox_call(call_id: str, turns: int) -> list[tuple[str, dict[str, Any]]]:
    """(label, body) of every stored message of one call, in the order cozmox sends them."""
    events: list[tuple[str, dict[str, Any]]] = []
    for status in ("ringing", "in-progress"):
        body = _payload(f"cozmox/status-update-{status}")
        body["message"]["call"]["id"] = call_id
        events.append((f"status-update {status}", body))
    messages = conversation(turns)
    for turn in range(1, turns + 1):
        body = _payload("cozmox/conversation-update")
        body["message"]["call"]["id"] = call_id
        body["message"]["messages"] = messages[: turn + 1]
        body["message"]["messagesOpenAIFormatted"] = _openai(messages[: turn + 1])
        body["message"]["timestamp"] = messages[turn]["time"] + 100
        events.append((f"conversation-update turn {turn}", body))
    ended = _payload("cozmox/status-update-ended")
    ended["message"]["call"]["id"] = call_id
    events.append(("status-update ended", ended))
    report = _payload("cozmox/end-of-call-report")
    report["message"]["call"]["id"] = call_id
    report["message"]["artifact"]["messages"] = messages
    report["message"]["artifact"]["messagesOpenAIFormatted"] = _openai(messages)
    report["message"]["artifact"]["transcript"] = "\n".join(
        f"{'AI' if m['role'] == 'bot' else 'User'}: {m['message']}" for m in messages[1:]
    )
    report["message"]["analysis"]["summary"] = (
        "Morgan booked a table for four on Saturday at 8pm, with a vegetarian guest and a high chair noted. "
        "The caller asked about allergies; the agent confirmed the kitchen adapts most dishes."
    )
    events.append(("end-of-call-report", report))
    return events


@dataclass
class Scenario:
    name: str
    vendor: str
    webhook: str
    function: str
    events: list[tuple[str, dict[str, Any]]]
    usages: list[tuple[str, Usage]] = field(default_factory=list)


def scenarios() -> list[Scenario]:
    cozmox = ("cozmox", "server-messages", "functions/cozmox_server_messages")
    return [
        Scenario("cozmox 30-turn call", *cozmox, cozmox_call("call_bench_30_turns", 30)),
        Scenario("cozmox 200-turn call", *cozmox, cozmox_call("call_bench_200_turns", 200)),
        Scenario(
            "speaknode conversation-complete",
            "speaknode",
            "conversation-complete",
            "functions/speaknode_conversation_complete",
            [("conversation-complete", _payload("speaknode/conversation-complete"))],
        ),
        Scenario(
            "agentsessions session-completed",
            "agentsessions",
            "session-completed",
            "functions/agentsessions_session_completed",
            [("session-completed", _payload("agentsessions/session-completed"))],
        ),
    ]


def _handler(function: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    from callvault_local.functions import load_handler

    return load_handler(ROOT / function, "app.lambda_handler", function.rsplit("/", 1)[1])


def _signed_event(vendor: str, webhook: str, body: bytes) -> dict[str, Any]:
    import importlib

    from callvault_local.apigw import http_event

    adapter = importlib.import_module(f"callvault.vendors.{vendor}").ADAPTER
    headers = {"content-type": "application/json", **adapter.sign(body, "bench-secret")}
    return http_event("POST", f"/webhooks/{vendor}/{webhook}", body, headers)


def play(scenario: Scenario, meter: Meter) -> None:
    from callvault_local.apigw import LambdaContext

    handler = _handler(scenario.function)
    for label, payload in scenario.events:
        body = json.dumps(payload).encode()
        event = _signed_event(scenario.vendor, scenario.webhook, body)
        with measured(meter) as usage:
            response = handler(event, LambdaContext())
        if response["statusCode"] != 200 or json.loads(response["body"])["status"] != "stored":
            raise SystemExit(f"{scenario.name}: {label} was not stored: {response['body']}")
        usage.request_bytes = len(body)
        scenario.usages.append((label, usage))


def recording_copier_writes(meter: Meter, vendor: str, session_id: str) -> list[tuple[str, Usage]]:
    """The copier's claim and finish updates on a session item, as the recordings function makes
    them. (Called by parameter name, so that the bench also runs on earlier versions of `store`.)"""
    import inspect
    from datetime import UTC, datetime

    from callvault import models, store

    key = {"pk": {"S": store.session_pk(vendor, session_id)}, "sk": {"S": "SESSION"}}
    item = meter.observer.get_item(TableName=meter.table, Key=key)
    claim_args: dict[str, Any] = {"vendor": vendor, "session_id": session_id, "claim": "bench-claim"}
    claim_args |= {"now": datetime.now(UTC), "seconds": 300}
    if "source_url" in inspect.signature(store.claim_recording).parameters:
        claim_args["source_url"] = item["Item"]["recording_source_url"]["S"]
    with measured(meter) as claim:
        assert store.claim_recording(**claim_args)
    archived: dict[str, Any] = {"state": "archived", "s3_uri": f"s3://callvault-archive/audio/{vendor}/{session_id}/0.wav"}
    archived |= {"bytes": 4_800_000, "sha256": "ab" * 32}
    finish_args: dict[str, Any] = {"vendor": vendor, "session_id": session_id, "claim": "bench-claim"}
    if "outcome" in inspect.signature(store.finish_recording).parameters:
        finish_args["outcome"] = models.Recording.model_validate(archived)
    else:
        finish_args["attributes"] = {f"recording_{name}": value for name, value in archived.items()}
    with measured(meter) as finish:
        assert store.finish_recording(**finish_args)
    return [("recording claim", claim), ("recording finish", finish)]


def read_session(meter: Meter, vendor: str, session_id: str) -> tuple[Usage, int, int]:
    """GET /sessions/{vendor}/{id} through the read handler: its usage, response bytes, transcript turns."""
    from callvault_local.apigw import LambdaContext, http_event

    handler = _handler("functions/sessions_read")
    event = http_event("GET", f"/sessions/{vendor}/{session_id}", b"", {})
    event["pathParameters"] = {"vendor": vendor, "session_id": session_id}
    event["routeKey"] = "GET /sessions/{vendor}/{session_id}"
    handler(event, LambdaContext())  # warm: the first call imports the resolver
    with measured(meter) as usage:
        response = handler(event, LambdaContext())
    if response["statusCode"] != 200:
        raise SystemExit(f"read failed: {response}")
    session = json.loads(response["body"])
    usage.request_bytes = 0
    return usage, len(response["body"]), len(session["transcript"])


# -- report ---------------------------------------------------------------------------------------


def _per_million(usages: list[Usage]) -> dict[str, float]:
    totals: dict[str, float] = dict.fromkeys(("api", "lambda", "dynamodb", "s3", "logs"), 0.0)
    for usage in usages:
        for part, dollars in usage.dollars().items():
            totals[part] += dollars
    return {part: totals[part] / len(usages) * 1e6 for part in ("api", "lambda", "dynamodb", "s3", "logs")}


def _line(label: str, usage: Usage) -> str:
    return (
        f"  {label:34s} WCU {usage.write_units:5.0f} (table {usage.table_units:4.0f}, index {usage.index_units:2.0f})"
        f"  session item {usage.session_bytes:6d} B  request {usage.request_bytes:7d} B  lambda {usage.lambda_ms():4.0f} ms"
    )


def main() -> None:
    import boto3
    from moto import mock_aws

    from callvault import aws
    from callvault_local import moto_patches, stack

    moto_patches.apply()
    with mock_aws():
        aws.reset()
        stack.create(boto3.Session())
        from callvault.config import settings

        meter = Meter(settings().table_name)
        meter.attach(aws.dynamodb(), aws.s3())
        plays = scenarios()
        for scenario in plays:
            play(scenario, meter)
        long_call = plays[1]
        long_id = long_call.events[0][1]["message"]["call"]["id"]
        copier = recording_copier_writes(meter, "cozmox", long_id)
        read, read_bytes, read_turns = read_session(meter, "cozmox", long_id)
        aws.reset()

    goals_met = True
    print("== Write units per event (DynamoDB rules, from item sizes before and after; x2 in a transaction)")
    for scenario in plays:
        usages = [u for _, u in scenario.usages]
        print(f"{scenario.name}: {len(usages)} events, {sum(u.write_units for u in usages):.0f} write units in all")
        updates = [(label, u) for label, u in scenario.usages if label.startswith("conversation-update")]
        shown = scenario.usages if len(scenario.usages) <= 4 else [*scenario.usages[:3], *updates[-1:], *scenario.usages[-2:]]
        for label, usage in shown:
            print(_line(label, usage))
        if updates:
            first, last = updates[0][1].write_units, updates[-1][1].write_units
            ratio = last / first
            goals_met &= ratio <= 1.2
            print(f"  turn {len(updates)} / turn 1: {last:.0f} / {first:.0f} WCU = {ratio:.2f}x  (goal <= 1.2x)")
    for label, usage in copier:
        print(_line(f"{label} (200-turn call)", usage))

    print("\n== Dollars per million events (prices in bench/write_cost.py)")
    print(f"  {'scenario':34s} {'total':>7s}  {'api':>6s} {'lambda':>6s} {'dynamodb':>8s} {'s3':>6s} {'logs':>6s}")
    for scenario in plays:
        parts = _per_million([u for _, u in scenario.usages])
        total = sum(parts.values())
        goals_met &= total <= 11.0
        print(
            f"  {scenario.name:34s} {total:7.2f}  {parts['api']:6.2f} {parts['lambda']:6.2f} {parts['dynamodb']:8.2f}"
            f" {parts['s3']:6.2f} {parts['logs']:6.2f}"
        )
    print("  goal: every scenario <= $11.00 per million events")

    print("\n== GET /sessions/cozmox/{id}, the 200-turn call")
    read_parts = _per_million([read])
    print(
        f"  {read_turns} transcript turns, response {read_bytes} B; DynamoDB {read.read_units:.1f} RCU,"
        f" S3 GET {read.calls['GetObject']} ({read.s3_get_bytes} B), lambda {read.lambda_ms():.0f} ms"
        f" ({read.own_ms:.0f} ms own); ${sum(read_parts.values()):.2f} per million reads"
        f" (dynamodb {read_parts['dynamodb']:.2f}, s3 {read_parts['s3']:.2f}, lambda {read_parts['lambda']:.2f},"
        f" api {read_parts['api']:.2f}, logs {read_parts['logs']:.2f})"
    )
    print(f"\ngoals {'met' if goals_met else 'NOT met'}")


if __name__ == "__main__":
    main()
