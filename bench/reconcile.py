"""Reconcile benchmark: one pass over a vendor API's calls into the local stack (moto).

    make bench      (1,000 calls; or: uv run python -m bench.reconcile [--conversations 10000])

A loopback fake of the VoiceOS API (callvault_local.fake_vendor_apis) holds N calls; webhooks
for 70% of them are delivered first through the real handler (30% dropped), then one reconcile
pass runs against the local stack's storage: a moto server on loopback, as `make dev` runs it.
Printed: sessions recovered (the 30%), vendor API requests per reconciled call against the
fewest any pass could make (the list pages, which carry every call whole, and the recording URL
of each recovered ended call, which VoiceOS serves apart), the pass's wall time, and, as the
floor measured in the same run, the time of a second pass over the same calls (nothing to fetch
or write: the listing and one GetItem per call), so the ratio says what filing costs on top of
looking.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/callvault"), str(ROOT / "src")]

from callvault_local.offline import isolate  # noqa: E402

isolate("bench", POWERTOOLS_LOG_LEVEL="ERROR", POWERTOOLS_METRICS_DISABLED="true", CALLVAULT_SECRET_VOICEOS="bench-voiceos")


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.filterwarnings("ignore", message="No application metrics to publish")  # the handler's, metrics being off
    parser = argparse.ArgumentParser(prog="bench.reconcile")
    parser.add_argument("--conversations", type=int, default=1_000)
    parser.add_argument("--drop", type=float, default=0.3)
    args = parser.parse_args(argv)

    import boto3

    from callvault import reconcile
    from callvault.vendors import voiceos
    from callvault_local import dev, stack
    from callvault_local.apigw import LambdaContext, http_event
    from callvault_local.fake_vendor_apis import FakeVendorApi
    from callvault_local.functions import load_handler

    moto_server, moto_port = dev.start_moto(0)
    stack.configure_environment(moto_port)
    stack.create(boto3.Session())
    handler = load_handler(ROOT / "functions" / "voiceos_events", "app.lambda_handler", "VoiceosEventsFunction")
    rng = random.Random(11)
    start = datetime.now(UTC) - timedelta(hours=12)
    with FakeVendorApi("voiceos", key="bench-key") as api:
        api.populate(args.conversations, start=start, spacing=timedelta(seconds=3))
        delivered = 0
        ended_delivered: list[str] = []
        for conversation in api.conversations.values():
            if rng.random() < args.drop:
                continue
            if conversation.body["status"] == "ended":
                ended_delivered.append(conversation.id)

            raw = (b'{"event":"conversation:%s","data":' % conversation.body["status"].encode()) + _json(conversation.body) + b"}"
            headers = voiceos.ADAPTER.sign(raw, "bench-voiceos")  # the conversation in an event, as an agent webhook
            with contextlib.redirect_stdout(io.StringIO()):  # the handler's metric lines
                result = handler(http_event("POST", "/webhooks/voiceos/events", raw, headers), LambdaContext())
            delivered += result["statusCode"] == 200
        adapter, reconciler = reconcile.adapter_with_reconciler("voiceos")

        client = reconcile.client_for(reconciler, "bench-key", api.url, allow_loopback=True)
        began = time.perf_counter()
        first = reconcile.run_pass(adapter, reconciler, client)
        first_seconds = time.perf_counter() - began
        asked = dict(api.requests)  # the first pass's requests, by kind, before the second adds its own

        floor_client = reconcile.client_for(reconciler, "bench-key", api.url, allow_loopback=True)
        began = time.perf_counter()
        second = reconcile.run_pass(adapter, reconciler, floor_client, since=first.since)
        floor_seconds = time.perf_counter() - began
    moto_server.shutdown()

    reconciled = first.stored
    # The fewest requests any pass could make: every list page (they carry each call whole), and
    # the recording URL of each recovered ended call (VoiceOS serves it apart from the call).
    ended = sum(1 for c in api.conversations.values() if c.body["status"] == "ended")
    recovered_ended = ended - len(ended_delivered)
    floor_requests = -(-args.conversations // voiceos.PAGE_LIMIT) + recovered_ended
    print(f"reconcile, VoiceOS fake API, {args.conversations} calls, webhooks delivered for {delivered} ({1 - args.drop:.0%})")
    print(f"  {first.line('voiceos')}; sessions recovered {first.recovered}")
    print(
        f"  API requests {first.requests}: {first.requests / max(reconciled, 1):.2f} per reconciled call "
        f"({asked.get('list', 0)} list pages, {asked.get('get', 0)} gets, {asked.get('recording', 0)} recording URLs); "
        f"floor {floor_requests} ({floor_requests / max(reconciled, 1):.2f} per reconciled call: the list pages and "
        f"one recording URL per recovered ended call); requests / floor = {first.requests / max(floor_requests, 1):.2f}x"
    )
    print(f"  one pass: {first_seconds:.1f} s ({first_seconds / args.conversations * 1000:.2f} ms per call listed)")
    print(
        f"  floor, second pass over the same calls ({second.line('voiceos')}, {second.requests} requests): "
        f"{floor_seconds:.1f} s; first pass / floor = {first_seconds / floor_seconds:.1f}x"
    )
    return 0 if first.ok and second.stored == 0 else 1


def _json(value: object) -> bytes:
    import json

    return json.dumps(value, separators=(",", ":")).encode()


if __name__ == "__main__":
    sys.exit(main())
