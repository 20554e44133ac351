"""`callvault reconcile --vendor V [--since ISO8601]`: one reconcile pass (DESIGN.md "Reconcile").

Against the local stack (`make dev`'s moto) by default, or a deployed stack's bucket and table.
The vendor API's base URL comes from `CALLVAULT_API_URL_<VENDOR>` (default: the vendor's public
API), its key from `CALLVAULT_API_KEY_<VENDOR>`. The last line printed is
`reconcile V: listed N, stored N, duplicate N, failed N`; the exit status is 1 when anything
failed or the API refused the key, 2 for a usage mistake.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def _fail(message: str) -> int:
    print(f"callvault reconcile: {message}", file=sys.stderr)
    return 2


def run(args: Any) -> int:
    # Before the package is imported: its logger and metrics read these once.
    # The failures are summed up below in words; the functions' JSON log lines would only repeat them.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from callvault import reconcile
    from callvault.sessions import InvalidParameter, parse_time
    from callvault.vendor_api import ApiError
    from callvault_local.console import UserError, vendor_name

    try:
        vendor = vendor_name(args.vendor)
        adapter, reconciler = reconcile.adapter_with_reconciler(vendor)
    except UserError as exc:
        return _fail(str(exc))
    except reconcile.ReconcileUnavailable as exc:
        return _fail(f"{exc} (vendors with a pull API: {', '.join(reconcile.pull_vendors())})")
    since = None
    if args.since:
        try:
            since = parse_time("--since", args.since)
        except InvalidParameter:
            return _fail(f"--since {args.since!r} is not an ISO 8601 time, e.g. 2026-11-20T09:15:00Z")
    key = os.environ.get(f"CALLVAULT_API_KEY_{vendor.upper()}", "").strip()
    if not key:
        return _fail(f"no API key: set CALLVAULT_API_KEY_{vendor.upper()} to your {vendor} API key")

    from callvault_local.console import use_storage

    use_storage(args)  # the deployed stack's bucket and table, else the running local stack (one-line errors)
    allow_loopback = not args.bucket  # locally, a fake vendor API on loopback (`callvault fake-api`)
    from callvault.config import settings

    settings.cache_clear()
    try:
        client = reconcile.client_for(
            reconciler, key, os.environ.get(f"CALLVAULT_API_URL_{vendor.upper()}") or None, allow_loopback=allow_loopback
        )
    except (reconcile.ReconcileUnavailable, ApiError) as exc:
        return _fail(str(exc))

    def progress(report: reconcile.Report) -> None:
        if sys.stderr.isatty():
            print(f"\r  listed {report.listed}, stored {report.stored} ...", end="", file=sys.stderr, flush=True)

    report = reconcile.run_pass(adapter, reconciler, client, since=since, progress=progress)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if report.refused:
        print(f"callvault reconcile: {report.refused}", file=sys.stderr)
    elif report.failed:
        print(
            f"callvault reconcile: {report.failed} failed (first: {report.first_failure}); the watermark stays at "
            "the last complete pass, so the next one lists them again",
            file=sys.stderr,
        )
    if report.forgotten:  # before the contract line, which stays the last
        print(f"forgotten {report.forgotten} (erased sessions the API still lists: counted as duplicate, nothing stored)")
    print(report.line(vendor))
    return 0 if report.ok else 1


def _reachable(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
