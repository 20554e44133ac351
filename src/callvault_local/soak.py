"""The load-and-fault harness: prove nothing is lost or doubled (issue 6).

    make soak                     10,000+ webhooks, 16 senders (about two minutes here)
    python -m callvault_local.soak --webhooks 600 --senders 8     (the smaller run in `make test`)

Runs the local stack in this process (loopback only), with moto answering a few percent of S3
and DynamoDB calls with errors and throttling, and some DynamoDB transactions failing after the
raw body reached S3 (the crash between archive and table). Senders post every vendor's events,
shuffled (ends before starts), 30% of them again as duplicates, a few with a wrong secret, and
retry any non-2xx as vendors do. A ledger of what was sent is checked against what S3 and
DynamoDB hold at the end; the exit status is non-zero when it does not balance.
"""

from __future__ import annotations

import argparse
import http.client
import importlib
import io
import json
import os
import random
import statistics
import subprocess  # starts this module's own API workers  # nosec B404
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

DYNAMODB_ERROR = "application/x-amz-json-1.0"


@dataclass
class Faults:
    """Which moto calls fail, and how; counts what was injected."""

    rate: float  # for each kind below, the share of calls that get it
    rng: random.Random
    injected: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        with self.lock:
            roll = self.rng.random()
        if target.endswith(".TransactWriteItems"):
            kinds = [("ddb-throttle", "ProvisionedThroughputExceededException"), ("ddb-500", "InternalServerError"),
                     ("crash-after-archive", "ValidationException")]  # fmt: skip
            for index, (name, code) in enumerate(kinds):
                if roll < self.rate * (index + 1):
                    self._count(name)
                    status = "500 Internal Server Error" if code == "InternalServerError" else "400 Bad Request"
                    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected"}).encode()
                    return status, [("content-type", DYNAMODB_ERROR)], body
            return None
        if environ.get("REQUEST_METHOD") == "PUT" and "/raw/" in environ.get("PATH_INFO", "") and roll < self.rate * 2:
            name, status, code = (
                ("s3-slowdown", "503 Slow Down", "SlowDown")
                if roll < self.rate
                else ("s3-500", "500 Internal Server Error", "InternalError")
            )
            self._count(name)
            return (
                status,
                [("content-type", "application/xml")],
                f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode(),
            )
        return None

    def _count(self, name: str) -> None:
        with self.lock:
            self.injected[name] += 1


@dataclass(frozen=True)
class Delivery:
    vendor: str
    webhook: str
    body: bytes
    key: str  # the event: vendor, session and which of its events
    authentic: bool


@dataclass
class Ledger:
    sent: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # final answers by status
    event_ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # event key -> ids answered
    stored_answers: Counter[str] = field(default_factory=Counter)  # event key -> "stored" answers
    retries: int = 0
    unanswered: int = 0  # attempts that got no answer (timeout, broken connection)
    given_up: int = 0
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


SOAK_START = datetime(2026, 11, 1, tzinfo=UTC)  # session n is created n seconds after


def build_traffic(webhooks: int, rng: random.Random) -> list[Delivery]:
    from callvault_local.samples import ALL_VENDORS, session_webhook

    originals: list[Delivery] = []
    base = SOAK_START
    n = 0
    target_unique = int(webhooks / 1.3)
    while len(originals) < target_unique:
        vendor = ALL_VENDORS[n % len(ALL_VENDORS)]
        session_id = f"soak-{vendor}-{n:06d}"
        created = (base + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")
        for ended in (False, True):
            hook = session_webhook(vendor, session_id, created, ended=ended)
            originals.append(
                Delivery(vendor, hook.webhook, hook.body, f"{vendor}/{session_id}/{'end' if ended else 'start'}", True)
            )
        n += 1
    duplicates = [rng.choice(originals) for _ in range(webhooks - len(originals))]
    forged = [Delivery(d.vendor, d.webhook, d.body.replace(b"soak-", b"forged-"), "forged/" + d.key, False)
              for d in rng.sample(originals, max(1, len(originals) // 50))]  # fmt: skip
    traffic = originals + duplicates + forged
    rng.shuffle(traffic)  # ends before starts, duplicates before originals
    return traffic


NO_ANSWER = 0  # the status recorded when the request timed out or its connection broke
ANSWER_TIMEOUT_SECONDS = 30  # as a vendor waits (cozmox gives up after 20 s by default)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - loopback URL we built
    try:
        with urllib.request.urlopen(request, timeout=ANSWER_TIMEOUT_SECONDS) as response:  # noqa: S310  # nosec B310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except (OSError, http.client.HTTPException) as exc:  # timed out, refused, reset: a vendor retries these too
        print(f"no answer from {url}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return NO_ANSWER, {}


def send_all(base_urls: Sequence[str], traffic: Sequence[Delivery], senders: int, ledger: Ledger, max_retries: int = 8) -> None:
    """Every delivery posted by `senders` threads, spread over the API workers at `base_urls`."""
    adapters = {v: importlib.import_module(f"callvault.vendors.{v}").ADAPTER for v in {d.vendor for d in traffic}}
    queue = list(reversed(traffic))
    queue_lock = threading.Lock()

    def sender(base_url: str) -> None:
        while True:
            with queue_lock:
                if not queue:
                    return
                delivery = queue.pop()
            secret = f"dev-{delivery.vendor}-secret" if delivery.authentic else "forged-secret"
            headers = {"content-type": "application/json", **adapters[delivery.vendor].sign(delivery.body, secret)}
            url = f"{base_url}/webhooks/{delivery.vendor}/{delivery.webhook}"
            for attempt in range(max_retries + 1):
                started = time.perf_counter()
                status, reply = _post(url, delivery.body, headers)
                with ledger.lock:
                    ledger.latencies.append(time.perf_counter() - started)
                if NO_ANSWER < status < 500 or attempt == max_retries:  # vendors retry 5xx and no answer; 4xx is final
                    break
                with ledger.lock:
                    ledger.retries += 1
                    ledger.unanswered += status == NO_ANSWER
                time.sleep(min(1.0, 0.02 * 2**attempt))
            with ledger.lock:
                ledger.sent += 1
                outcome = str(reply.get("status", status))
                ledger.answers[outcome] += 1
                if status >= 500 or status == NO_ANSWER:
                    ledger.given_up += 1
                if "event_id" in reply:
                    ledger.event_ids[delivery.key].add(reply["event_id"])
                if outcome == "stored":
                    ledger.stored_answers[delivery.key] += 1

    threads = [threading.Thread(target=sender, args=(base_urls[i % len(base_urls)],), name=f"sender-{i}") for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def check(traffic: Sequence[Delivery], ledger: Ledger, dropped: set[str] | frozenset[str] = frozenset()) -> dict[str, int]:
    """What S3 and DynamoDB hold, against the ledger. A `dropped` event never reached callvault:
    it is not lost when reconcile filed its session at least as far along as the event says."""
    import boto3

    from callvault.store import session_pk
    from callvault_local.stack import LOCAL_BUCKET, LOCAL_TABLE

    items: dict[tuple[str, str], dict[str, Any]] = {}
    for page in boto3.client("dynamodb").get_paginator("scan").paginate(TableName=LOCAL_TABLE):  # the harness only
        for item in page["Items"]:
            items[(item["pk"]["S"], item["sk"]["S"])] = item
    raw_ids: set[str] = set()
    for listing in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=LOCAL_BUCKET, Prefix="raw/"):
        raw_ids |= {obj["Key"].rsplit("/", 1)[1].removesuffix(".json") for obj in listing.get("Contents", [])}
    authentic = {d.key: d for d in traffic if d.authentic}
    lost = doubled = 0
    pulled = sum(1 for item in items.values() if item.get("webhook", {}).get("S") == "pull")
    for key, delivery in authentic.items():
        ids = ledger.event_ids.get(key, set())
        session_id = key.split("/")[1]
        pk = session_pk(delivery.vendor, session_id)
        if key in dropped:
            session = items.get((pk, "SESSION"), {})
            status = session.get("status", {}).get("S")
            if status not in (("ended",) if key.endswith("/end") else ("in_progress", "ended")):
                lost += 1
            continue
        found = [i for i in ids if (pk, f"EVENT#{i}") in items and i in raw_ids]
        if len(ids) != 1 or not found:
            lost += 1
        if ledger.stored_answers.get(key, 0) > 1:
            doubled += 1
    event_items = sum(1 for _, sk in items if sk.startswith("EVENT#")) - pulled
    forged_in = sum(1 for item in items.values() if item.get("session_id", {}).get("S", "").startswith("forged-"))
    return {
        "unique": len(authentic),
        "event_items": event_items,
        "lost": lost,
        "doubled": doubled + max(0, event_items - (len(authentic) - len(dropped))),
        "forged_stored": forged_in,
    }


def _start_workers(count: int, moto_port: int, log: IO[str]) -> list[tuple[subprocess.Popen[str], str]]:
    """`count` API worker processes (each like one Lambda container per function), sharing moto.
    Their output (the functions' error logs) is copied to `log` as it comes: a pipe nobody reads
    fills up, and a worker writing to it would stop answering."""
    workers = []
    log_lock = threading.Lock()

    def copy_output(stream: Any) -> None:
        for line in stream:
            with log_lock:
                log.write(line)

    for _ in range(count):
        process = subprocess.Popen(  # noqa: S603 - this module, as a worker  # nosec B603
            [sys.executable, "-m", "callvault_local.soak", "--worker", "--moto-port", str(moto_port)],
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        line = process.stdout.readline().strip() if process.stdout else ""
        if not line.startswith("ready "):
            process.kill()
            raise RuntimeError(f"API worker did not start: {line!r}")
        threading.Thread(target=copy_output, args=(process.stdout,), daemon=True).start()
        workers.append((process, f"http://127.0.0.1:{line.split()[1]}"))
    return workers


def worker(moto_port: int) -> int:
    """An API worker: every route of the template on a free loopback port, against moto at `moto_port`."""
    from callvault_local import dev, stack

    stack.configure_environment(moto_port)
    api = dev.LocalApi()
    server = dev.make_api_server(api, "127.0.0.1", 0, io.StringIO())
    print(f"ready {server.server_address[1]}", flush=True)
    sys.stdout = dev.WithoutMetrics(sys.stdout)
    server.serve_forever()
    return 0


# Vendors whose own API reconcile pulls from: their dropped webhooks can be recovered.
PULL_VENDORS = ("voiceos", "cozmox", "vapi", "retell", "elevenlabs")
RECONCILE_PASSES = 5  # a pass that met an injected storage fault is run again, as the schedule would


def drop(traffic: Sequence[Delivery], share: float, rng: random.Random) -> tuple[list[Delivery], set[str]]:
    """The traffic without `share` of the pull vendors' events (every copy of each: the vendor
    lost it, retries and all), and the keys of the events dropped."""
    keys = sorted({d.key for d in traffic if d.authentic and d.vendor in PULL_VENDORS})
    dropped = {key for key in keys if rng.random() < share}
    return [d for d in traffic if d.key not in dropped], dropped


def reconcile_all(traffic: Sequence[Delivery], since: str) -> dict[str, int]:
    """One fake API per pull vendor holding every call of the run (ended), then reconcile passes
    until one completes without failure: what they recovered, and the requests they made."""
    from callvault import reconcile
    from callvault_local.fake_vendor_apis import FakeVendorApi

    totals: Counter[str] = Counter()
    for vendor in PULL_VENDORS:
        sessions = {d.key.split("/")[1] for d in traffic if d.vendor == vendor and d.authentic}
        with FakeVendorApi(vendor, key="soak-api-key", media=b"") as api:
            for session_id in sessions:
                api.add(session_id, datetime.fromisoformat(since) + timedelta(seconds=int(session_id.rsplit("-", 1)[1]) + 60),
                        "ended", recording=False)  # fmt: skip
            adapter, reconciler = reconcile.adapter_with_reconciler(vendor)
            client = reconcile.client_for(reconciler, api.key, api.url, allow_loopback=True)
            for _ in range(RECONCILE_PASSES):
                report = reconcile.run_pass(adapter, reconciler, client, since=since)
                totals["recovered"] += report.recovered
                totals["passes"] += 1
                if report.ok:
                    break
            totals["failed"] += report.failed
            totals["listed"] += report.listed
            totals["requests"] += client.requests
            totals["conversations"] += len(sessions)
    return dict(totals)


def run(webhooks: int, senders: int, workers: int, fault_rate: float, seed: int, drop_share: float = 0.0) -> int:
    import boto3

    from callvault_local import dev, stack
    from callvault_local.offline import isolate

    isolate("soak")
    rng = random.Random(seed)  # noqa: S311 - test traffic, not secrets  # nosec B311
    faults = Faults(fault_rate, random.Random(seed + 1))  # noqa: S311  # nosec B311
    moto_server, moto_port = dev.start_moto(0, faults=faults)
    stack.configure_environment(moto_port)
    stack.create(boto3.Session())
    worker_log = tempfile.NamedTemporaryFile("w", prefix="callvault-soak-", suffix=".log", delete=False)  # noqa: SIM115
    running = _start_workers(workers, moto_port, worker_log)
    traffic = build_traffic(webhooks, rng)
    sent, dropped = drop(traffic, drop_share, random.Random(seed + 2))  # noqa: S311  # nosec B311
    ledger = Ledger()
    started = time.perf_counter()
    recovery: dict[str, int] = {}
    try:
        send_all([url for _, url in running], sent, senders, ledger)
        elapsed = time.perf_counter() - started
        if dropped:
            recovery = reconcile_all(traffic, (SOAK_START - timedelta(minutes=1)).isoformat())
        result = check(traffic, ledger, dropped)
    finally:
        for process, _ in running:
            process.kill()
            process.wait()
        moto_server.shutdown()
        worker_log.close()
    latencies = sorted(ledger.latencies)
    p50, p99 = statistics.median(latencies) * 1000, latencies[int(0.99 * (len(latencies) - 1))] * 1000
    rejected = ledger.answers.get("401", 0)
    if dropped:
        print(
            f"dropped on the way in: {len(dropped)} events ({drop_share:.0%} of the pull vendors'); reconcile: "
            f"{recovery.get('passes', 0)} passes, {recovery.get('recovered', 0)} sessions recovered, "
            f"{recovery.get('requests', 0)} API requests for {recovery.get('conversations', 0)} calls, "
            f"failed {recovery.get('failed', 0)}"
        )
    print(f"webhooks {ledger.sent} in {elapsed:.1f} s = {ledger.sent / elapsed:.0f}/s ({senders} senders, {workers} API workers)")
    print(
        f"requests {len(latencies)} (vendor-style retries {ledger.retries}, of which unanswered {ledger.unanswered}); "
        f"response p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1] * 1000:.0f} ms"
    )
    print(f"faults injected: {dict(sorted(faults.injected.items()))}")
    with open(worker_log.name) as written:
        print(f"the functions' logs (errors only): {sum(1 for _ in written)} lines in {worker_log.name}")
    print(f"answers: {dict(sorted(ledger.answers.items()))}")
    print(
        f"unique events {result['unique']}; event items in DynamoDB {result['event_items']}; "
        f"forged stored {result['forged_stored']}"
    )
    stored = result["unique"] - result["lost"]
    duplicates = ledger.answers.get("duplicate", 0)
    print(
        f"sent {ledger.sent}, stored {stored}, duplicates {duplicates}, rejected {rejected}, "
        f"lost {result['lost']}, doubled {result['doubled']}"
    )
    expected_rejected = sum(1 for d in traffic if not d.authentic)
    balanced = (
        result["lost"] == 0
        and result["doubled"] == 0
        and result["forged_stored"] == 0
        and ledger.given_up == 0
        and rejected == expected_rejected
        and ledger.sent == len(sent)
    )
    if not balanced:
        print("LEDGER DOES NOT BALANCE", file=sys.stderr)
    return 0 if balanced else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callvault soak", description="The load-and-fault harness (issue 6).")
    parser.add_argument("--webhooks", type=int, default=10_000)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--fault-rate", type=float, default=0.02, help="share of calls per fault kind (default 0.02)")
    parser.add_argument("--workers", type=int, default=4, help="API worker processes, as concurrent Lambda containers")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--drop", type=float, default=0.0, help="share of the pull vendors' webhooks lost on the way in; reconcile recovers them"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--moto-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.moto_port)
    return run(args.webhooks, args.senders, args.workers, args.fault_rate, args.seed, args.drop)


if __name__ == "__main__":
    sys.exit(main())
