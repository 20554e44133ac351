"""Erasure benchmark: requests, time and cost to erase a 200-event session with a 50 MB recording;
then requests and time to erase a 30-event session beside 0, 1,000 and 10,000 other bodies of its day.

    make bench        (or: uv run python -m bench.erasure)

On moto in-process. The session's day also holds OTHER_SESSIONS other calls. Time is compared
with a floor from the same run: deleting an identical session whose keys are known, with the
fewest requests (list its versions, DeleteObjects, BatchWriteItem), i.e. no tombstone, no second
sweep, no search. The scale part shows whether the erasure's requests grow with the other calls
of the session's day (they should not: only with the session's own objects).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/callvault"), str(ROOT / "src")]

from callvault_local.offline import isolate  # noqa: E402

isolate("bench", POWERTOOLS_LOG_LEVEL="WARNING", CALLVAULT_SECRET_COZMOX="bench-secret")

EVENTS = 200
OTHER_SESSIONS = 50  # 5 events each, the same day
RECORDING_BYTES = 50 * 1024 * 1024
SAMPLE_ID = "call_7d1e5f0a-93b1-4c5e-8f0e-2a6b1c9d4e33"

# us-east-1 list prices (2025): S3 Standard LIST $0.005/1k, GET $0.0004/1k, DELETE free; DynamoDB
# on-demand $0.625 per million write units, $0.125 per million read units; Lambda arm64 512 MB.
S3_LIST_PER_REQUEST = 0.005 / 1000
S3_GET_PER_REQUEST = 0.0004 / 1000
DDB_WRITE_UNIT = 0.625 / 1_000_000
DDB_READ_UNIT = 0.125 / 1_000_000
LAMBDA_512MB_ARM_SECOND = 0.0000133334 / 2


def _body(name: str, session_id: str, step: int) -> bytes:
    text = (ROOT / f"events/payloads/cozmox/{name}.json").read_text().replace(SAMPLE_ID, session_id)
    body = json.loads(text)
    body["message"]["timestamp"] = 1_700_000_000_000 + step  # a distinct event each time
    return json.dumps(body).encode()


def _deliver(handler: Any, session_id: str, events: int) -> None:
    from callvault_local.apigw import LambdaContext, http_event

    names = ("status-update-in-progress", "conversation-update", "end-of-call-report")
    for step in range(events):
        body = _body(names[min(step * len(names) // events, len(names) - 1)], session_id, step)
        headers = {"content-type": "application/json", "authorization": "Bearer bench-secret"}
        reply = handler(http_event("POST", "/webhooks/cozmox/server-messages", body, headers), LambdaContext())
        assert reply["statusCode"] == 200, reply


def _recording(session_id: str) -> None:
    from callvault import aws
    from callvault.config import settings

    key = f"audio/cozmox/{session_id}/0123456789abcdef.wav"
    aws.s3().put_object(Bucket=settings().bucket_name, Key=key, Body=b"\0" * RECORDING_BYTES)


def _bare_delete(session_id: str) -> None:
    """The floor: what deleting a session costs when its keys are known and nothing races it."""
    from callvault import archive, store

    items = store.session_items("cozmox", session_id, consistent=True)
    keys = {archive.key_of(i["raw_s3_uri"]["S"]) for i in items if "raw_s3_uri" in i}
    doomed = [v for v in archive.versions("raw/cozmox/server-messages/") if v.key in keys]
    doomed += [*archive.versions(f"sessions/cozmox/{session_id}/"), *archive.versions(f"audio/cozmox/{session_id}/")]
    archive.delete_versions(doomed)
    store.delete_items(items)


@contextlib.contextmanager
def _in_moto() -> Iterator[Any]:
    """moto in this process with the stack created; yields the cozmox webhook's handler."""
    import boto3
    from moto import mock_aws

    from callvault import aws
    from callvault_local import moto_patches, stack
    from callvault_local.functions import load_handler

    moto_patches.apply()
    handler = load_handler(ROOT / "functions/cozmox_server_messages", "app.lambda_handler", "CozmoxServerMessagesFunction")
    with mock_aws():
        aws.reset()
        stack.create(boto3.Session())
        try:
            yield handler
        finally:
            aws.reset()


def _counting() -> Counter[str]:
    """From now on, each request of the shared S3 and DynamoDB clients, counted by operation."""
    from callvault import aws

    seen: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        seen[model.name] += 1

    for client in (aws.s3(), aws.dynamodb()):
        client.meta.events.register("after-call", count)
    return seen


def _timed_erase(session_id: str) -> tuple[Any, float]:
    """The erasure of `session_id` (cozmox) and the seconds it took."""
    from callvault import erasure

    start = time.perf_counter()
    done = erasure.erase("cozmox", session_id, who="bench")
    seconds = time.perf_counter() - start
    assert done is not None
    return done, seconds


def measure() -> dict[str, Any]:
    with _in_moto() as handler:
        for session_id in ("call_erased", "call_floor"):
            _deliver(handler, session_id, EVENTS)
            _recording(session_id)
        for other in range(OTHER_SESSIONS):
            _deliver(handler, f"call_other-{other}", 5)
        seen = _counting()
        done, erase_seconds = _timed_erase("call_erased")
        erase_requests = Counter(seen)
        seen.clear()
        start = time.perf_counter()
        _bare_delete("call_floor")
        floor_seconds = time.perf_counter() - start
        floor_requests = Counter(seen)
    return {
        "removed": done.counts(),
        "erase_seconds": erase_seconds,
        "erase_requests": erase_requests,
        "floor_seconds": floor_seconds,
        "floor_requests": floor_requests,
    }


SCALE_EVENTS = 30
SCALE_OTHERS = (0, 1_000, 10_000)


def _other_bodies(count: int) -> None:
    """`count` raw bodies of other calls on the same day, written where ingest writes them (one
    event each of `count` other sessions; put directly: delivering 10,000 webhooks would time the
    webhook path, not the erasure)."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime

    from callvault import archive, aws
    from callvault.config import settings

    now = datetime.now(UTC)
    s3, bucket = aws.s3(), settings().bucket_name

    def put(index: int) -> None:
        session_id = f"call_other-{index}"
        key = _other_key(session_id, f"other-{index:05d}", now)
        s3.put_object(Bucket=bucket, Key=key, Body=_body("conversation-update", session_id, index))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, range(count)))
    assert archive is not None


def _other_key(session_id: str, event_id: str, received: Any) -> str:
    from callvault import archive

    return archive.raw_key("cozmox", "server-messages", event_id, received, session_id)


def measure_scale(others: int) -> dict[str, Any]:
    """Erase one SCALE_EVENTS-event session beside `others` other bodies of its day: requests by
    operation, seconds, what was removed."""
    with _in_moto() as handler:
        _deliver(handler, "call_erased", SCALE_EVENTS)
        _other_bodies(others)
        seen = _counting()
        done, seconds = _timed_erase("call_erased")
    return {"others": others, "requests": Counter(seen), "seconds": seconds, "removed": done.counts()}


def cost(requests: Counter[str], removed: dict[str, int], seconds: float) -> dict[str, float]:
    """Dollars, from request counts and what was removed (items under 1 KB but the ~2 KB session item)."""
    lists = requests["ListObjectVersions"]
    gets = requests["GetObject"]
    # Consistent Query reads 4 KB per unit; the items are ~0.5 KB: two sweeps read them once each (the second finds none).
    read_units = requests["Query"] * max(1, removed["items"] * 512 // 4096) + requests["GetItem"]
    write_units = (removed["items"] + 1) + requests["PutItem"]  # a delete costs the deleted item's size; tombstone puts
    return {
        "s3_list": lists * S3_LIST_PER_REQUEST,
        "s3_get": gets * S3_GET_PER_REQUEST,
        "dynamodb": write_units * DDB_WRITE_UNIT + read_units * DDB_READ_UNIT,
        "lambda": seconds * LAMBDA_512MB_ARM_SECOND,
    }


def main() -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        result = measure()
    requests, floor = result["erase_requests"], result["floor_requests"]
    print(f"== Erasing a {EVENTS}-event session with a {RECORDING_BYTES // 2**20} MB recording (moto in-process)")
    print(f"beside {OTHER_SESSIONS} other sessions of the same day ({OTHER_SESSIONS * 5} bodies read to find unreferenced ones)")
    print(f"removed   {result['removed']}")
    print(f"erasure   {sum(requests.values())} requests {dict(sorted(requests.items()))}  {result['erase_seconds']:.2f} s")
    print(f"floor     {sum(floor.values())} requests {dict(sorted(floor.items()))}  {result['floor_seconds']:.2f} s")
    print(f"ratio     {result['erase_seconds'] / result['floor_seconds']:.1f}x the floor's time")
    dollars = cost(requests, result["removed"], result["erase_seconds"])
    print(f"cost      ${sum(dollars.values()):.6f} per erasure  " + "  ".join(f"{k} ${v:.6f}" for k, v in dollars.items()))
    print(f"== Erasing a {SCALE_EVENTS}-event session beside other bodies of its day (moto in-process)")
    alone: dict[str, Any] | None = None  # beside no other body: what the session's own objects cost
    for others in SCALE_OTHERS:
        with contextlib.redirect_stdout(io.StringIO()):
            scale = measure_scale(others)
        alone = alone or scale
        total, gets = sum(scale["requests"].values()), scale["requests"]["GetObject"]
        ratio = total / max(1, sum(alone["requests"].values()))
        print(
            f"others {others:>6}  {total:>6} requests ({gets} GetObject, {ratio:.1f}x beside none)"
            f"  {scale['seconds']:.2f} s ({scale['seconds'] / alone['seconds']:.1f}x)  {dict(sorted(scale['requests'].items()))}"
        )


if __name__ == "__main__":
    main()
