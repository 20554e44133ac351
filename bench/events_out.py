"""Events out: what goes on the bus per call, how soon, and what a failing receiver costs.

    make bench        (or: uv run python -m bench.events_out)

1. Events put per call, by type, for each vendor's typical sequence of webhooks (the sample
   payloads in events/payloads/, each sent twice: the second time a duplicate), through the real
   handlers on moto and the table's stream through SessionChangesFunction; PutEvents calls per call.
2. Seconds from a webhook's 200 to its event on the local bus, on `callvault dev` as a user runs
   it (its own process, free ports): each call's end-of-call report sent, then the watch queue
   read until its `Call Ended` is there. The floor, measured in the same run: one receive on that
   queue when the event is already there (what reading it costs without waiting for it).
3. Outbound deliveries per call: a receiver that answers 500 twice then 200, and one down past
   the retry window (the template's maxReceiveCount; backoff 0 here), then the dead-letter queue
   sent again (`callvault events --redrive`) to a receiver that is back.
"""

from __future__ import annotations

import copy
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/callvault"), str(ROOT / "src")]

from callvault_local.offline import isolate  # noqa: E402

SECRETS = {v: f"bench-{v}-secret" for v in ("agentsessions", "cozmox", "elevenlabs", "retell", "speaknode", "vapi", "voiceos")}
isolate("bench", **{f"CALLVAULT_SECRET_{v.upper()}": s for v, s in SECRETS.items()}, CALLVAULT_SECRET_CURSOR="bench-cursor")

# Each vendor's webhooks for one call, in the order the vendor sends them (events/payloads/).
SEQUENCES: dict[str, list[tuple[str, str]]] = {
    "cozmox": [
        ("server-messages", "status-update-ringing"),
        ("server-messages", "status-update-in-progress"),
        ("server-messages", "conversation-update"),
        ("server-messages", "status-update-ended"),
        ("server-messages", "end-of-call-report"),
    ],
    "vapi": [("server-messages", "status-update-in-progress"), ("server-messages", "end-of-call-report")],
    "retell": [("events", "call-started"), ("events", "call-ended"), ("events", "call-analyzed")],
    "elevenlabs": [("post-call", "post-call-transcription")],
    "speaknode": [("session-started", "session-started"), ("conversation-complete", "conversation-complete")],
    "voiceos": [("events", "conversation-started"), ("events", "conversation-ended")],
    "agentsessions": [("session-completed", "session-completed")],
}
PAYLOADS = ROOT / "events" / "payloads"


def _post(vendor: str, webhook: str, body: bytes) -> str:
    import importlib

    from callvault_local.apigw import LambdaContext, http_event
    from callvault_local.functions import load_handler
    from callvault_local.template import routes

    (route,) = [r for r in routes() if r.path == f"/webhooks/{vendor}/{webhook}"]
    headers = {
        "content-type": "application/json",
        **importlib.import_module(f"callvault.vendors.{vendor}").ADAPTER.sign(body, SECRETS[vendor]),
    }
    result = load_handler(route.code_uri, route.handler, route.function)(
        http_event("POST", route.path, body, headers), LambdaContext()
    )
    assert result["statusCode"] == 200, result
    return str(json.loads(result["body"])["status"])


def _watch(queue_url: str) -> list[dict[str, Any]]:
    import boto3

    sqs, found = boto3.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def events_per_call() -> None:
    import contextlib
    import io

    import boto3
    from moto import mock_aws

    from callvault import aws, config
    from callvault_local import bus, moto_patches, stack
    from callvault_local.streams import deliveries

    moto_patches.apply()
    print("1. events put per call, each webhook of the call sent twice (the second: a duplicate)")
    print(
        f"   {'vendor':<14} {'webhooks':>8} {'stored':>6} {'Call Started':>12} {'Call Ended':>10} {'other':>5} {'PutEvents':>9}"
    )
    for vendor, sequence in SEQUENCES.items():
        with mock_aws(), contextlib.redirect_stdout(io.StringIO()):
            aws.reset()
            config.settings.cache_clear()
            os.environ["EVENT_BUS_NAME"] = stack.LOCAL_BUS
            created = stack.create(boto3.Session(), secrets=SECRETS)
            local = bus.create(boto3.Session(), notify=False)
            (changes,) = [
                d
                for d in deliveries(created.table_name, backoff_seconds=0, log=lambda _: None)
                if d.function.name == "SessionChangesFunction"
            ]
            puts = Counter[str]()
            real = aws.events()
            put = real.put_events

            def counted(Entries: list[dict[str, Any]], _put: Any = put, _puts: Counter[str] = puts) -> Any:
                _puts["calls"] += 1
                return _put(Entries=Entries)

            real.put_events = counted
            outcomes = Counter[str]()
            for _ in range(2):
                for webhook, name in sequence:
                    outcomes[_post(vendor, webhook, (PAYLOADS / vendor / f"{name}.json").read_bytes())] += 1
                    changes.poll()  # each delivery handed on before the next, as a vendor spaces them
            found = Counter(e["detail-type"] for e in _watch(local.watch_queue_url))
        other = sum(n for t, n in found.items() if t not in ("Call Started", "Call Ended"))
        print(
            f"   {vendor:<14} {2 * len(sequence):>8} {outcomes['stored']:>6} {found['Call Started']:>12} "
            f"{found['Call Ended']:>10} {other:>5} {puts['calls']:>9}"
        )
    os.environ.pop("EVENT_BUS_NAME", None)
    print("   (a recording adds one Recording Archived or Recording Failed per call, when the copier finishes)")


def _started_dev() -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "callvault_local.cli", "dev", "--port", "0", "--moto-port", "0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    banner = []
    assert process.stdout
    for line in process.stdout:
        banner.append(line)
        if line.startswith("Ctrl-C stops."):
            break
    text = "".join(banner)
    url = re.search(r"(http://127\.0\.0\.1:\d+)/webhooks/", text)
    moto = re.search(r"moto endpoint: (http://127\.0\.0\.1:\d+)", text)
    assert url and moto, text
    threading.Thread(target=lambda: [None for _ in process.stdout or []], daemon=True).start()  # keep its pipe drained
    return process, url.group(1), moto.group(1)


def latency(calls: int = 20) -> None:
    import boto3

    process, url, moto = _started_dev()
    try:
        sqs = boto3.client("sqs", endpoint_url=moto, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        queue_url = sqs.get_queue_url(QueueName="callvault-events-watch")["QueueUrl"]
        body = json.loads((PAYLOADS / "cozmox" / "end-of-call-report.json").read_bytes())
        seconds, floors = [], []
        for n in range(calls):
            one = copy.deepcopy(body)
            one["message"]["call"]["id"] = f"bench-latency-{n}"
            request = urllib.request.Request(  # noqa: S310 - the local stack, on loopback
                f"{url}/webhooks/cozmox/server-messages",
                data=json.dumps(one).encode(),
                headers={"content-type": "application/json", "authorization": f"Bearer {SECRETS['cozmox']}"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback  # nosec B310
                assert response.status == 200
            answered = time.perf_counter()
            while True:
                started = time.perf_counter()
                messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
                if messages:
                    floors.append(time.perf_counter() - started)
                    seconds.append(time.perf_counter() - answered)
                    for message in messages:
                        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    break
                time.sleep(0.02)
        median, floor = statistics.median(seconds), statistics.median(floors)
        print(f"2. seconds from a webhook's 200 to its Call Ended on the local bus (callvault dev, {calls} calls)")
        print(
            f"   median {median:.2f} s, p95 {sorted(seconds)[int(0.95 * (calls - 1))]:.2f} s, max {max(seconds):.2f} s;"
            f" floor (one receive of an event already there) {floor * 1000:.1f} ms: {median / floor:.0f}x"
        )
        print(
            "   (make dev polls the stream every 0.5 s, and Lambda's event source waits up to MaximumBatchingWindowInSeconds 5 s in AWS)"
        )
    finally:
        process.kill()
        process.wait()


class _Receiver:
    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.received = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.received += 1
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def failing_receiver() -> None:
    import contextlib
    import io

    import boto3
    from moto import mock_aws

    from callvault import aws, config
    from callvault_local import bus, stack
    from callvault_local.streams import deliveries

    receiver = _Receiver()
    os.environ.update(
        EVENT_BUS_NAME=stack.LOCAL_BUS,
        CALLVAULT_NOTIFY_URL=receiver.url,
        NOTIFY_BACKOFF_SECONDS="0",
        RECORDING_ALLOW_LOOPBACK="true",
        CALLVAULT_NOTIFY_SECRET=bus.DEV_NOTIFY_SECRET,
    )
    rows = []
    for label, statuses in (("500 twice, then 200", [500, 500]), ("down past the retry window", [503] * 100)):
        with mock_aws(), contextlib.redirect_stdout(io.StringIO()):
            aws.reset()
            config.settings.cache_clear()
            created = stack.create(boto3.Session(), secrets=SECRETS)
            local = bus.create(boto3.Session(), notify=True)
            bus.configure(local)
            (changes,) = [
                d
                for d in deliveries(created.table_name, backoff_seconds=0, log=lambda _: None)
                if d.function.name == "SessionChangesFunction"
            ]
            sender = bus.NotifySender(local.notify_queue_url or "", log=lambda _: None)
            receiver.statuses, receiver.received = list(statuses), 0
            _post("cozmox", "server-messages", (PAYLOADS / "cozmox" / "end-of-call-report.json").read_bytes())
            changes.poll()
            sender.poll()
            before_redrive = receiver.received
            attributes = boto3.client("sqs").get_queue_attributes(
                QueueUrl=local.dead_letter_queue_url or "", AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            dead = int(attributes["ApproximateNumberOfMessages"])
            receiver.statuses = []  # the receiver is back
            bus.redrive()
            sender.poll()
            after = receiver.received - before_redrive
            rows.append((label, before_redrive, dead, after))
    receives = bus.notify_queue_settings()["RedrivePolicy"]["maxReceiveCount"]
    print(f"3. outbound POSTs per call (one Call Ended) with a failing receiver (maxReceiveCount {receives})")
    for label, posts, dead, after in rows:
        print(f"   {label:<28} {posts:>3} POSTs, {dead} left in the dead-letter queue, {after} more POST(s) after a redrive")
    for name in ("EVENT_BUS_NAME", "CALLVAULT_NOTIFY_URL", "NOTIFY_URL", "NOTIFY_QUEUE_URL", "NOTIFY_BACKOFF_SECONDS"):
        os.environ.pop(name, None)


def main() -> None:
    events_per_call()
    failing_receiver()
    latency()


if __name__ == "__main__":
    main()
