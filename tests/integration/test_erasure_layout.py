"""Erasure's cost follows the session, not its day (issue 18, defect 4): each session's raw and
quarantined bodies live under its own folder of each webhook's, so the erasure lists those; and
the bodies of the layout before those folders (a stack upgraded from 0.2) are still found."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from callvault import archive, aws, erasure
from tests.conftest import Stored
from tests.integration.test_erasure import BYSTANDER, VICTIM, deliver_call, traces


def _legacy_raw_key(vendor: str, webhook: str, event_id: str, received: datetime, session_id: str | None = None) -> str:
    """Where 0.2 archived a raw body: no session folder."""
    return f"raw/{vendor}/{webhook}/{received:%Y/%m/%d}/{event_id}.json"


@pytest.fixture
def requests() -> Iterator[Counter[str]]:
    """The S3 and DynamoDB requests made while the test runs, by operation."""
    seen: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        seen[model.name] += 1

    clients = (aws.s3(), aws.dynamodb())
    for client in clients:
        client.meta.events.register("after-call", count)
    yield seen
    for client in clients:
        client.meta.events.unregister("after-call", count)


def test_the_requests_of_an_erasure_do_not_grow_with_the_other_calls_of_its_day(stored: Stored, requests: Counter[str]) -> None:
    deliver_call(BYSTANDER)  # one other call: the webhook's folder is there in both cases
    deliver_call(VICTIM)
    requests.clear()
    assert erasure.erase("cozmox", VICTIM, who="test") is not None
    alone = Counter(requests)
    assert traces(stored, VICTIM) == []

    twin = "call_twin-0003"
    deliver_call(twin)
    for other in range(20):  # twenty other calls of the same day, five bodies each
        deliver_call(f"call_other-{other:04d}")
    requests.clear()
    assert erasure.erase("cozmox", twin, who="test") is not None
    assert requests == alone  # the same requests, one for one: none for the others' 100 bodies
    assert requests["GetObject"] == 0
    assert traces(stored, twin) == []
    assert traces(stored, "call_other-0007")


def test_a_session_archived_in_the_old_layout_is_erased_whole(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stack upgraded from 0.2: the session's bodies (pointed at, acknowledged only, quarantined)
    have no session folder. All are found; a bystander's are kept."""
    with monkeypatch.context() as old:
        old.setattr(archive, "raw_key", _legacy_raw_key)
        deliver_call(VICTIM)
        deliver_call(BYSTANDER)
    legacy = stored.keys("raw/cozmox/server-messages/")
    assert legacy and all(archive.is_legacy_key(key) for key in legacy)
    deliver_call(VICTIM)  # and events after the upgrade (duplicates: the same bodies, now in its folder)
    assert erasure.erase("cozmox", VICTIM, who="test") is not None
    assert traces(stored, VICTIM) == []
    assert traces(stored, BYSTANDER)
