"""Per-call metrics benchmark: what computing them adds to a webhook's write.

    make bench        (or: uv run python -m bench.call_metrics)

For each vendor that reports metrics, its final report grown to about 50 KB (the size
bench.ingest uses): the time of the vendor's `metrics_of` pass, against the adapter's whole parse
of the same body (which includes it) and the floor bench.ingest divides by (json.loads + SHA-256 of
the body), each the fastest of interleaved rounds in this process: the least disturbed by other
work on a loaded machine, and disturbed alike for all three. `metrics_of / floor` is what the pass adds to bench.ingest's handler ratio.
Then the bytes the `metrics` attribute adds to the session item (attribute name plus its JSON),
which every later write of that session pays for.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/callvault"), str(ROOT / "src")]

from callvault_local.offline import isolate  # noqa: E402

isolate("bench", POWERTOOLS_LOG_LEVEL="WARNING")

TARGET_BYTES = 50_000


def _grown(body: dict[str, Any], turns: list[Any], shift: Callable[[dict[str, Any], int], None]) -> bytes:
    """`body` with its `turns` repeated (each copy shifted by `shift`) to about TARGET_BYTES."""
    base = [copy.deepcopy(t) for t in turns]
    while len(json.dumps(body)) < TARGET_BYTES:
        turn = copy.deepcopy(base[len(turns) % len(base)])
        shift(turn, len(turns))
        turns.append(turn)
    return json.dumps(body).encode()


def _vapi_format(vendor: str) -> bytes:
    body = json.loads((ROOT / f"events/payloads/{vendor}/end-of-call-report.json").read_text())

    def shift(turn: dict[str, Any], index: int) -> None:
        for key in ("time", "endTime"):
            if isinstance(turn.get(key), int | float):
                turn[key] += index * 1000

    return _grown(body, body["message"]["artifact"]["messages"], shift)


def _retell() -> bytes:
    body = json.loads((ROOT / "events/payloads/retell/call-analyzed.json").read_text())
    body["call"].pop("transcript_with_tool_calls", None)  # grow one transcript, as a long call has it
    return _grown(body, body["call"]["transcript_object"], lambda turn, index: None)


def _elevenlabs() -> bytes:
    body = json.loads((ROOT / "events/payloads/elevenlabs/post-call-transcription.json").read_text())
    return _grown(body, body["data"]["transcript"], lambda turn, index: None)


def _speaknode() -> bytes:
    body = json.loads((ROOT / "events/payloads/speaknode/conversation-complete.json").read_text())
    return _grown(body, body["data"]["history"], lambda turn, index: None)


# vendor -> (webhook, body builder)
REPORTS: dict[str, tuple[str, Callable[[], bytes]]] = {
    "cozmox": ("server-messages", lambda: _vapi_format("cozmox")),
    "vapi": ("server-messages", lambda: _vapi_format("vapi")),
    "retell": ("events", _retell),
    "elevenlabs": ("post-call", _elevenlabs),
    "speaknode": ("conversation-complete", _speaknode),
}


def _fastest_ms(samples: list[float]) -> float:
    return min(samples) * 1000


def timings(vendor: str, rounds: int = 400) -> dict[str, float]:
    """Fastest ms of the metrics pass, of the adapter's parse and of the floor, interleaved."""
    import importlib

    from callvault import vendors

    webhook, build = REPORTS[vendor]
    body = build()
    payload = json.loads(body)
    module = importlib.import_module(f"callvault.vendors.{'vapi' if vendor == 'cozmox' else vendor}")
    adapter = vendors.adapter(vendor)
    metrics_of: Callable[[Any], Any] = module.metrics_of
    assert metrics_of(payload) is not None, vendor  # the pass measured is one that finds metrics
    spent: dict[str, list[float]] = {"metrics": [], "parse": [], "floor": []}
    for _ in range(rounds):
        start = time.perf_counter()
        metrics_of(payload)
        spent["metrics"].append(time.perf_counter() - start)
        start = time.perf_counter()
        adapter.parse(webhook, payload, {})
        spent["parse"].append(time.perf_counter() - start)
        start = time.perf_counter()
        json.loads(body)
        hashlib.sha256(body).hexdigest()
        spent["floor"].append(time.perf_counter() - start)
    return {"body_bytes": len(body), **{f"{name}_ms": _fastest_ms(samples) for name, samples in spent.items()}}


def item_bytes(vendor: str) -> int:
    """Bytes the `metrics` attribute adds to the vendor's session item (DynamoDB counts the
    attribute's name and its string value's UTF-8 length)."""
    from callvault import store, vendors

    webhook, build = REPORTS[vendor]
    update = vendors.adapter(vendor).parse(webhook, json.loads(build()), {}).update
    assert update is not None and update.metrics is not None
    attributes, _ = store.session_attributes(update, None)
    return len(store.METRICS_ATTR.encode()) + len(attributes[store.METRICS_ATTR]["S"].encode())


def main() -> None:
    print("== Per-call metrics: the pass at ingest, against the adapter's parse and bench.ingest's floor")
    print(f"{'vendor':11s} {'body':>7s} {'metrics':>9s} {'parse':>9s} {'floor':>9s} {'of parse':>9s} {'+ ratio':>8s}  item bytes")
    for vendor in REPORTS:
        t = timings(vendor)
        share = t["metrics_ms"] / t["parse_ms"]
        added = t["metrics_ms"] / t["floor_ms"]
        print(
            f"{vendor:11s} {t['body_bytes']:7d} {t['metrics_ms']:7.3f}ms {t['parse_ms']:7.3f}ms {t['floor_ms']:7.3f}ms"
            f" {share:8.1%} {added:7.2f}x  {item_bytes(vendor)}"
        )
    print("(+ ratio: what the pass adds to bench.ingest's handler/floor ratio; item bytes: paid on every later write)")


if __name__ == "__main__":
    main()
