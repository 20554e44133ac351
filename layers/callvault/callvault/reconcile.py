"""Reconcile: pull what the webhooks missed from the vendor's own API (DESIGN.md "Reconcile").

A pass lists the conversations created from the vendor's watermark (minus an overlap) to now,
page by page to the end, then fetches by id the vendor's sessions still open from before that
window (a call longer than the overlap). A conversation the table already holds at the listed status or further
costs one GetItem and nothing else; any other is fetched whole and filed through the webhook
path (`ingest.file_pulled`): raw response archived byte for byte, `source: pull`, the same
idempotency key and merge rules. The watermark moves to the pass's end only when nothing failed,
so a page or a conversation that kept failing is listed again next time.

The vendor module knows its API (`VendorAdapter.reconciler`); nothing here is vendor-specific.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from callvault import ingest, store, vendors
from callvault.config import settings
from callvault.errors import StorageUnavailable
from callvault.models import Status, format_utc
from callvault.observability import count_with, logger
from callvault.vendor_api import ApiClient, ApiError
from callvault.vendors.base import Listed, Reconciler, VendorAdapter

_UNFINISHED = (Status.QUEUED, Status.RINGING, Status.IN_PROGRESS)
_PAGE = 100


class ReconcileUnavailable(Exception):
    """Reconcile cannot run for this vendor: no pull API, or no base URL to call it at."""


@dataclass
class Report:
    """What one pass did. `refused`: the API's refusal of the key, when it refused it."""

    listed: int = 0
    stored: int = 0
    duplicate: int = 0
    failed: int = 0
    recovered: int = 0  # stored sessions callvault had never heard of: the webhooks lost them
    forgotten: int = 0  # erased sessions the API still lists: not fetched, nothing stored (in `duplicate` too)
    requests: int = 0
    refused: str | None = None
    first_failure: str | None = None  # what went wrong first, for a person reading the summary
    since: str = ""
    until: str = ""

    def line(self, vendor: str) -> str:
        """The summary line (DESIGN.md contract)."""
        return f"reconcile {vendor}: listed {self.listed}, stored {self.stored}, duplicate {self.duplicate}, failed {self.failed}"

    def fail(self, reason: str) -> None:
        """Count one failure (a conversation, or the listing itself) and keep the first reason."""
        self.failed += 1
        self.first_failure = self.first_failure or reason

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.refused is None


def pull_vendors() -> list[str]:
    """The vendors that have a pull API, by name."""
    return sorted(name for name in vendors.known() if vendors.adapter(name).reconciler is not None)


def adapter_with_reconciler(vendor: str) -> tuple[VendorAdapter, Reconciler]:
    """The vendor's adapter and its pull API; ReconcileUnavailable when it has none."""
    if vendor not in vendors.known():
        raise ReconcileUnavailable(f"unknown vendor {vendor!r}")
    adapter: VendorAdapter = importlib.import_module(f"callvault.vendors.{vendor}").ADAPTER
    if adapter.reconciler is None:
        raise ReconcileUnavailable(f"{vendor} has no API that lists calls: nothing to reconcile from")
    return adapter, adapter.reconciler


def client_for(reconciler: Reconciler, key: str, base_url: str | None, *, allow_loopback: bool) -> ApiClient:
    """A client for the vendor API at `base_url` (default: its public one) with `key`."""
    url = base_url or reconciler.public_url
    if not url:
        raise ReconcileUnavailable(f"no API URL: {reconciler.url_hint}")
    config = settings()
    return ApiClient(
        url,
        reconciler.auth_headers(key),
        allow_loopback=allow_loopback,
        retries=config.api_retries,
        backoff_seconds=config.api_backoff_seconds,
    )


def window_start(vendor: str, now: datetime) -> str:
    """Where a pass without `--since` starts: the watermark minus the overlap, or the first window."""
    config = settings()
    mark = store.get_watermark(vendor)
    if mark is None:
        return format_utc(now - timedelta(seconds=config.reconcile_first_window_seconds))
    start = datetime.fromisoformat(mark.replace("Z", "+00:00")) - timedelta(seconds=config.reconcile_overlap_seconds)
    return format_utc(start)


def _reconcile_one(adapter: VendorAdapter, reconciler: Reconciler, client: ApiClient, listed: Listed, report: Report) -> None:
    rank = store.status_rank(adapter.vendor, listed.session_id)
    if rank == store.ERASED_RANK:
        # Erased, and the vendor still lists it: nothing to fetch, nothing stored (the same read
        # found the tombstone). Counted as a duplicate too: the line's counts add up to what was listed.
        _forgotten(report)
        return
    if rank is not None and listed.status is not None and rank >= listed.status.rank:
        report.duplicate += 1  # the webhooks (or an earlier pass) got here already
        return
    pulled = reconciler.fetch(client, listed)
    filed = ingest.file_pulled(adapter, pulled.body, datetime.now(UTC), pulled.parse)
    if filed.outcome == "stored":
        report.stored += 1
        if rank is None:
            report.recovered += 1
    elif filed.outcome == "quarantined":  # kept under quarantine/ for a parser fix and replay
        report.fail(f"{listed.session_id}: quarantined ({filed.reason})")
        logger.warning("pulled conversation quarantined", session_id=listed.session_id, reason=filed.reason)
    elif filed.outcome == "forgotten":  # erased while it was fetched: the pipeline took its bytes back
        _forgotten(report)
    else:
        report.duplicate += 1


def _forgotten(report: Report) -> None:
    report.duplicate += 1
    report.forgotten += 1


# Sessions still open that the pass's listing did not cover are fetched again by id, so a
# call longer than the overlap whose end the webhooks lost still ends. For a day: a vendor that
# never ends a call is left to SessionsStale rather than asked every few minutes for ever.
OPEN_RECHECK = timedelta(days=1)


def _open_sessions(vendor: str, now: datetime) -> Iterator[str]:
    """Ids of `vendor`'s sessions not ended, listed (created, started, or else first heard
    of) in the day before `now`: one Query per unfinished status on the by-vendor-status index."""
    lowest = format_utc(now - OPEN_RECHECK)
    highest = format_utc(now) + "#\uffff"
    for status in _UNFINISHED:
        start_key = None
        while True:
            keys, start_key = store.query_listing(
                vendor=vendor, status=status.value, lowest=lowest, highest=highest, limit=_PAGE, start_key=start_key
            )
            for key in keys:
                yield key[store.LIST_SK_ATTR]["S"].split("#", 2)[2]  # "{listed_at}#{vendor}#{session_id}"
            if not start_key:
                break


def run_pass(
    adapter: VendorAdapter,
    reconciler: Reconciler,
    client: ApiClient,
    *,
    since: str | None = None,
    now: datetime | None = None,
    progress: Callable[[Report], None] | None = None,
) -> Report:
    """One reconcile pass for the vendor: every listed conversation filed or found up to date.

    Never raises for the API or storage: failures are counted in the report (and the watermark
    stays), a refused key is `report.refused`."""
    now = now or datetime.now(UTC)
    report = Report(until=format_utc(now))
    listed_ids: set[str] = set()
    try:
        report.since = since or window_start(adapter.vendor, now)
        for page in reconciler.list_pages(client, report.since, report.until):
            for listed in page:
                report.listed += 1
                listed_ids.add(listed.session_id)
                try:
                    _reconcile_one(adapter, reconciler, client, listed, report)
                except ApiError as exc:
                    if exc.refused_key:
                        raise
                    report.fail(exc.reason)
                    logger.warning("conversation not fetched", session_id=listed.session_id, reason=exc.reason)
                except StorageUnavailable as exc:
                    report.fail(str(exc))
                    logger.error("conversation not stored", session_id=listed.session_id, reason=str(exc))
            if progress:
                progress(report)
        for session_id in _open_sessions(adapter.vendor, now):
            if session_id in listed_ids:
                continue  # the listing just covered it
            report.listed += 1
            try:
                _reconcile_one(adapter, reconciler, client, Listed(session_id=session_id, status=None), report)
            except ApiError as exc:
                if exc.refused_key:
                    raise
                if exc.not_found:  # the vendor no longer has it: nothing to learn, nothing lost
                    report.duplicate += 1
                    continue
                report.fail(exc.reason)
                logger.warning("open session not fetched", session_id=session_id, reason=exc.reason)
            except StorageUnavailable as exc:
                report.fail(str(exc))
                logger.error("open session not stored", session_id=session_id, reason=str(exc))
    except ApiError as exc:
        if exc.refused_key:
            report.refused = f"the {adapter.vendor} API refused the key ({exc.reason})"
        else:  # the listing itself kept failing: what the rest of it held is listed next time
            report.fail(exc.reason)
        logger.warning("listing stopped", reason=exc.reason)
    except StorageUnavailable as exc:
        report.fail(str(exc))
        logger.error("storage unavailable", reason=str(exc))
    report.requests = client.requests
    if report.ok:
        try:
            store.advance_watermark(adapter.vendor, report.until)
        except StorageUnavailable as exc:  # harmless: the next pass covers this window again
            logger.warning("watermark not advanced", reason=str(exc))
    return report


# -- in AWS: one function per vendor, run by EventBridge Scheduler


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A scheduled pass for the function's vendor (RECONCILE_VENDOR). Off (nothing called, no
    failure) until the vendor's API key is put in its secret."""
    from callvault.secrets import api_key_for

    config = settings()
    vendor = config.reconcile_vendor or ""
    logger.append_keys(vendor=vendor)
    adapter, reconciler = adapter_with_reconciler(vendor)
    key = api_key_for(vendor)
    if not key:
        logger.info("reconcile off: no API key in the vendor's API key secret")
        return {"vendor": vendor, "status": "off"}
    try:
        client = client_for(reconciler, key, config.api_url, allow_loopback=config.recording_allow_loopback)
    except (ReconcileUnavailable, ApiError) as exc:  # a key but no usable URL: say so every pass
        logger.error("reconcile misconfigured", reason=str(exc))
        count_with("ReconcileFailures", 1, vendor=vendor)
        return {"vendor": vendor, "status": "failed", "error": str(exc)}
    report = run_pass(adapter, reconciler, client)
    # Emitted every pass, zeros included: the failure alarm counts consecutive periods.
    count_with("SessionsRecovered", report.recovered, vendor=vendor)
    count_with("ReconcileFailures", report.failed + (1 if report.refused else 0), vendor=vendor)
    logger.info("reconcile pass", **{k: v for k, v in asdict(report).items() if v is not None})
    return {"vendor": vendor, "status": "ok" if report.ok else "failed", **asdict(report)}


# -- sessions that went quiet before they ended (any vendor)

# How far back stale sessions are looked for: older ones are someone's known backlog by then.
STALE_LOOKBACK = timedelta(days=7)


def count_stale(now: datetime | None = None) -> dict[str, int]:
    """Sessions not ended whose last event is older than `stale_after_seconds`, per vendor.

    No Scan: for each unfinished status, one Query per vendor on the by-vendor-status index, over
    the sessions listed (created or started, hence last heard of, at the latest) between the
    lookback and the stale limit, then one BatchGetItem per page to read their `updated_at`."""
    now = now or datetime.now(UTC)
    limit = format_utc(now - timedelta(seconds=settings().stale_after_seconds))
    lowest = format_utc(now - STALE_LOOKBACK)
    stale: dict[str, int] = {}
    for vendor_name, status in ((v, s) for v in sorted(vendors.known()) for s in _UNFINISHED):
        start_key = None
        while True:  # vendor by vendor: one Query per page, no merge across vendors to pay for
            keys, start_key = store.query_listing(
                vendor=vendor_name, status=status.value, lowest=lowest, highest=limit, limit=_PAGE, start_key=start_key
            )
            for item in store.get_sessions(keys):
                if item.get("updated_at", {}).get("S", "") < limit:
                    vendor = item.get("vendor", {}).get("S", "unknown")
                    stale[vendor] = stale.get(vendor, 0) + 1
            if not start_key:
                break
    return stale


@logger.inject_lambda_context(clear_state=True)
def stale_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Counts SessionsStale (all vendors together, the alarm's metric) on a schedule."""
    stale = count_stale()
    count_with("SessionsStale", sum(stale.values()))
    if stale:
        logger.warning("stale sessions", per_vendor=stale)
    return {"stale": stale}
