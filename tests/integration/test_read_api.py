"""The read API over a few hundred stored sessions of every vendor: filters, order, pagination,
cursors and bad parameters, through the read function as API Gateway invokes it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from moto import mock_aws

from callvault import config
from callvault_local import stack
from callvault_local.dev import LocalApi
from callvault_local.samples import VENDORS as SAMPLE_VENDORS
from callvault_local.samples import session_webhook
from tests.conftest import CURSOR_KEY, SECRETS, post_webhook, put_secret, reset_caches

BASE = datetime(2026, 11, 1, tzinfo=UTC)
SESSIONS_PER_VENDOR = 75


@dataclass(frozen=True)
class Expected:
    vendor: str
    session_id: str
    created_at: str
    status: str


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def population() -> Iterator[list[Expected]]:
    """75 sessions per vendor, one minute apart, interleaved; every third one ended."""
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for vendor, value in SECRETS.items():
            patch.setenv(f"CALLVAULT_SECRET_{vendor.upper()}", value)
        patch.setenv("CALLVAULT_SECRET_CURSOR", CURSOR_KEY)
        reset_caches()
        stack.create(boto3.Session(), secrets={**SECRETS, "cursor": CURSOR_KEY})
        expected = []
        for n in range(SESSIONS_PER_VENDOR * len(SAMPLE_VENDORS)):
            vendor = SAMPLE_VENDORS[n % len(SAMPLE_VENDORS)]
            session_id, created_at = f"{vendor}-session-{n:04d}", _iso(BASE + timedelta(minutes=n))
            ended = n % 3 == 0
            for is_end in (False, True) if ended else (False,):
                webhook = session_webhook(vendor, session_id, created_at, ended=is_end)
                response = post_webhook(vendor, webhook.webhook, webhook.body)
                assert response.status == 200 and response.json["status"] == "stored", response
            expected.append(Expected(vendor, session_id, created_at, "ended" if ended else "in_progress"))
        yield expected
        reset_caches()


API = LocalApi()


def get(path: str, **query: Any) -> tuple[int, dict[str, Any]]:
    target = path + ("?" + urlencode({k: v for k, v in query.items() if v is not None}) if query else "")
    reply = API.handle("GET", target, {}, b"", "127.0.0.1")
    assert reply.headers.get("content-type", "").startswith("application/json"), reply
    return reply.status, json.loads(reply.body)


def list_all(**filters: Any) -> list[dict[str, Any]]:
    """Every page of a listing, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        status, page = get("/sessions", cursor=cursor, **filters)
        assert status == 200, page
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert page["items"], "a page with a cursor must not be empty"
    raise AssertionError("pagination did not end")


def _newest_first(sessions: list[Expected]) -> list[tuple[str, str]]:
    return [(e.vendor, e.session_id) for e in sorted(sessions, key=lambda e: e.created_at, reverse=True)]


def _ids(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(i["vendor"], i["session_id"]) for i in items]


def test_pages_cover_every_session_once_newest_first(population: list[Expected]) -> None:
    items = list_all(limit=7)
    assert _ids(items) == _newest_first(population)
    assert len(set(_ids(items))) == len(population) == SESSIONS_PER_VENDOR * len(SAMPLE_VENDORS)


def test_default_page_is_twenty_full_summaries(population: list[Expected]) -> None:
    status, page = get("/sessions")
    assert status == 200 and len(page["items"]) == 20 and page["next_cursor"]
    first = page["items"][0]
    newest = max(population, key=lambda e: e.created_at)
    assert (first["vendor"], first["session_id"], first["created_at"]) == (newest.vendor, newest.session_id, newest.created_at)
    assert first["status"] == newest.status and "transcript" not in first and "events" not in first
    assert set(first["recording"]) >= {"source_url", "expires_at", "state", "s3_uri", "bytes", "sha256"}


@pytest.mark.parametrize(
    "filters",
    [
        {"vendor": "cozmox"},
        {"status": "ended"},
        {"status": "in_progress"},
        {"vendor": "speaknode", "status": "ended"},
        {"created_after": "2026-11-01T01:00:00Z", "created_before": "2026-11-01T02:30:00Z"},
        {"vendor": "voiceos", "created_after": "2026-11-01T03:00:00.000Z"},
        {"status": "ended", "created_before": "2026-11-01T01:00:00+00:00"},
        {
            "vendor": "agentsessions",
            "status": "in_progress",
            "created_after": "2026-11-01T00:10:00",
            "created_before": "2026-11-01T04:00:00Z",
        },
    ],
    ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()),
)
def test_filters_combine(population: list[Expected], filters: dict[str, str]) -> None:
    def parse(text: str) -> datetime:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def wanted(e: Expected) -> bool:
        created = parse(e.created_at)
        return (
            filters.get("vendor", e.vendor) == e.vendor
            and filters.get("status", e.status) == e.status
            and ("created_after" not in filters or created > parse(filters["created_after"]))
            and ("created_before" not in filters or created < parse(filters["created_before"]))
        )

    expected = _newest_first([e for e in population if wanted(e)])
    assert expected, "a filter that matches nothing tests nothing"
    assert _ids(list_all(limit=9, **filters)) == expected


def test_time_bounds_are_exclusive(population: list[Expected]) -> None:
    at = population[10].created_at
    items = list_all(created_after=at, created_before=population[13].created_at)
    assert _ids(items) == _newest_first(population[11:13])


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "finished"}, "status"),
        ({"vendor": "acme"}, "vendor"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": "2026-13-01"}, "created_before"),
        ({"created_after": "2026-11-02T00:00:00Z", "created_before": "2026-11-01T00:00:00Z"}, "created_after"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"vendr": "cozmox"}, "vendr"),  # a typo is named, not ignored (it would list every vendor)
        ({"vendor": "cozmox", "Limit": "5"}, "Limit"),
    ],
    ids=lambda v: json.dumps(v, sort_keys=True) if isinstance(v, dict) else v,
)
def test_bad_parameters_are_400_naming_the_parameter(population: list[Expected], query: dict[str, str], parameter: str) -> None:
    status, body = get("/sessions", **query)
    assert status == 400 and body["error"].startswith(parameter), body


def test_tampered_and_foreign_cursors_are_400(population: list[Expected], monkeypatch: pytest.MonkeyPatch) -> None:
    _, page = get("/sessions", vendor="cozmox", limit=5)
    cursor = page["next_cursor"]
    payload, mac = cursor.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    for bad in (f"{flipped}.{mac}", f"{payload}.{mac[::-1]}", cursor + "x"):
        status, body = get("/sessions", vendor="cozmox", limit=5, cursor=bad)
        assert status == 400 and body["error"].startswith("cursor"), bad
    # the same cursor with other filters is someone else's position
    status, body = get("/sessions", vendor="voiceos", limit=5, cursor=cursor)
    assert status == 400 and "another query" in body["error"]
    # the page size may change between pages; the position stays valid
    assert get("/sessions", vendor="cozmox", limit=50, cursor=cursor)[0] == 200
    # a cursor signed with a key that is not (or no longer) configured is refused; a rotated-in
    # key keeps old cursors valid while the old key is still listed
    monkeypatch.setenv("SECRET_CACHE_SECONDS", "0")  # each rotation seen at once
    config.settings.cache_clear()
    put_secret("cursor", "new-key")
    assert get("/sessions", vendor="cozmox", limit=5, cursor=cursor)[0] == 400
    put_secret("cursor", f"new-key,{CURSOR_KEY}")
    assert get("/sessions", vendor="cozmox", limit=5, cursor=cursor)[0] == 200


def test_one_session_with_events_and_raw_uris(population: list[Expected]) -> None:
    ended = next(e for e in population if e.vendor == "cozmox" and e.status == "ended")
    status, session = get(f"/sessions/cozmox/{ended.session_id}")
    assert status == 200, session
    assert session["status"] == "ended" and session["created_at"] == ended.created_at
    assert [e["type"] for e in session["events"]] == ["status-update", "end-of-call-report"]
    s3 = boto3.client("s3")
    for event in session["events"]:
        bucket, key = event["raw_s3_uri"].removeprefix("s3://").split("/", 1)
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    assert session["transcript"] and all(set(t) == {"role", "text", "at", "seconds", "tool"} for t in session["transcript"])
    assert session["recording"]["state"] == "pending" and session["recording"]["source_url"]


def test_unknown_session_and_unknown_vendor_are_404(population: list[Expected]) -> None:
    status, body = get("/sessions/cozmox/no-such-call")
    assert status == 404 and "no-such-call" in body["error"]
    status, body = get("/sessions/acme/x")
    assert status == 404 and "acme" in body["error"] and "cozmox" in body["error"], body
