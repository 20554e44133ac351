"""Listing times (DESIGN.md "Listing times"): the order of a listing of reconciled Retell calls.

    make bench      (or: uv run python -m bench.listing_times)

A loopback fake of the Retell API holds calls started a minute apart; one reconcile pass files them
(Retell lists newest first, so callvault hears of the newest first), then `GET /sessions?vendor=retell`
lists them. "Before" is the order callvault listed by until listing times: when it first heard of
each session (its first event's received_at, read from the same table); "after" is the listing
as served now, by `listed_at` (Retell's `start_timestamp`). The truth is the fake API's own start times.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/callvault"), str(ROOT / "src")]

from callvault_local.offline import isolate  # noqa: E402

isolate("bench", POWERTOOLS_LOG_LEVEL="ERROR", POWERTOOLS_METRICS_DISABLED="true", CALLVAULT_SECRET_CURSOR="bench-cursor")

CALLS = 8


def _newest_first(values: dict[str, str]) -> list[str]:
    return [session_id for session_id, _ in sorted(values.items(), key=lambda kv: kv[1], reverse=True)]


def main() -> int:
    import boto3

    from callvault import reconcile, sessions, store
    from callvault_local import dev, stack
    from callvault_local.fake_vendor_apis import FakeVendorApi

    moto_server, moto_port = dev.start_moto(0)
    stack.configure_environment(moto_port)
    stack.create(boto3.Session())
    start = datetime.now(UTC) - timedelta(hours=2)
    with FakeVendorApi("retell", key="bench-key") as api:
        for n in range(CALLS):
            api.add(f"call-{n}", start + timedelta(minutes=n), recording=False)
        adapter, reconciler = reconcile.adapter_with_reconciler("retell")
        client = reconcile.client_for(reconciler, "bench-key", api.url, allow_loopback=True)
        report = reconcile.run_pass(adapter, reconciler, client, since=(start - timedelta(minutes=1)).isoformat())
    listed = sessions.list_sessions(vendor="retell", limit=100).items
    first_heard: dict[str, str] = {}
    for item in listed:
        events = [i for i in store.session_items("retell", item.session_id) if i["sk"]["S"].startswith(store.EVENT_SK_PREFIX)]
        first_heard[item.session_id] = min(e["received_at"]["S"] for e in events)
    moto_server.shutdown()

    started = {f"call-{n}": (start + timedelta(minutes=n)).isoformat(timespec="seconds") for n in range(CALLS)}
    truth = _newest_first(started)
    before, after = _newest_first(first_heard), [item.session_id for item in listed]
    print(f"== Listing {CALLS} reconciled Retell calls, newest first ({report.line('retell')})")
    print(f"started (the truth)      {' '.join(truth)}")
    print(
        f"before: by first heard   {' '.join(before)}   {'right' if before == truth else 'WRONG: oldest first' if before == truth[::-1] else 'WRONG'}"
    )
    print(f"after:  by listed_at     {' '.join(after)}   {'right' if after == truth else 'WRONG'}")
    print(f"listed_at of the newest  {listed[0].listed_at} (its start_timestamp; started_at {listed[0].started_at})")
    return 0 if after == truth else 1


if __name__ == "__main__":
    sys.exit(main())
