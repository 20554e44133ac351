"""Events out: webhooks through their handlers, the table's stream through SessionChangesFunction
(as Lambda's event source delivers it), the bus in moto, and a rule's SQS target that receives them."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import jsonschema  # type: ignore[import-untyped]
import pytest

from callvault import aws, erasure, reconcile
from callvault_local import bus, deployed, event_schemas, stack
from callvault_local.fake_vendor_apis import FakeVendorApi
from callvault_local.replay import replay
from callvault_local.streams import deliveries
from tests.conftest import Stored, payload, post_webhook


@pytest.fixture(autouse=True)
def deployed_with_it_on() -> Iterator[None]:
    """The functions run as a stack deployed with this feature on (it is off by default)."""
    with deployed.parameters(CallEvents="true"):
        yield


class Events:
    """The stream's session-changes reader, and what reached the bus (by the watch rule's queue)."""

    def __init__(self, table: str) -> None:
        (self.changes,) = [
            d for d in deliveries(table, backoff_seconds=0, log=lambda _: None) if d.function.name == "SessionChangesFunction"
        ]
        self.local = bus.create(boto3.Session(), notify=False)
        self.seen: list[dict[str, Any]] = []

    def out(self) -> list[dict[str, Any]]:
        """Deliver the stream's new records, then every event the bus routed since the last call."""
        self.changes.poll()
        sqs = boto3.client("sqs")
        new: list[dict[str, Any]] = []
        while messages := sqs.receive_message(QueueUrl=self.local.watch_queue_url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                new.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.local.watch_queue_url, ReceiptHandle=message["ReceiptHandle"])
        for event in new:  # each detail as its schema in docs/events/ says (moto's envelope lacks `account`)
            schema = json.loads((event_schemas.OUTPUT / f"{event_schemas.slug(event['detail-type'])}.json").read_text())
            jsonschema.validate(event["detail"], {"$defs": schema["$defs"], **schema["properties"]["detail"]})
            assert event["source"] == "callvault" and event["detail-type"] == schema["properties"]["detail-type"]["const"]
        self.seen += new
        return new


@pytest.fixture
def events(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> Events:
    monkeypatch.setenv("EVENT_BUS_NAME", stack.LOCAL_BUS)
    return Events(stored.table)


def kinds(found: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["detail-type"], e["detail"]["session_id"]) for e in found]


def cozmox(name: str, call_id: str) -> dict[str, Any]:
    body = copy.deepcopy(payload(f"cozmox/{name}"))
    body["message"]["call"]["id"] = call_id
    return body


def send(name: str, call_id: str) -> str:
    response = post_webhook("cozmox", "server-messages", cozmox(name, call_id))
    assert response.status == 200, response
    return str(response.json["status"])


def test_a_call_in_order_starts_once_and_ends_once(events: Events) -> None:
    assert send("status-update-ringing", "call-a") == "stored"
    assert kinds(events.out()) == [("Call Started", "call-a")]
    send("status-update-in-progress", "call-a")
    send("conversation-update", "call-a")
    assert events.out() == []  # more of a call already started: no change
    send("status-update-ended", "call-a")
    send("end-of-call-report", "call-a")
    (ended,) = events.out()
    assert ended["source"] == "callvault" and ended["detail-type"] == "Call Ended"
    detail = ended["detail"]
    assert set(detail) == {"id", "type", "vendor", "session_id", "session"}
    assert (detail["type"], detail["vendor"], detail["session_id"]) == ("call.ended", "cozmox", "call-a")
    assert detail["session"]["status"] == "ended" and "transcript" not in detail["session"]


def test_one_call_ended_across_duplicates_late_events_and_a_replay(events: Events) -> None:
    assert send("end-of-call-report", "call-b") == "stored"  # first heard of when it was over
    assert send("end-of-call-report", "call-b") == "duplicate"
    assert send("status-update-in-progress", "call-b") == "stored"  # late: never reopens, never "starts"
    assert send("status-update-ringing", "call-b") == "stored"
    assert send("status-update-ended", "call-b") == "stored"  # ended again, by another event
    assert replay("cozmox")["duplicate"] == 4
    found = events.out()
    assert kinds(found) == [("Call Ended", "call-b")]
    assert found[0]["detail"]["session"]["cost"]["total_usd"] == payload("cozmox/end-of-call-report")["message"]["cost"]


def test_a_reconcile_pull_of_a_known_call_emits_nothing_and_a_missed_call_ends_once(events: Events, stored: Stored) -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    with FakeVendorApi("voiceos", key="k") as api:
        api.populate(2, start=now - timedelta(minutes=30), spacing=timedelta(minutes=5))
        known = sorted(api.conversations)[0]
        body = api.conversations[known].body
        assert post_webhook("voiceos", "events", {"event": "conversation:ended", "data": body}).status == 200
        assert kinds(events.out()) == [("Call Ended", known)]
        adapter, reconciler = reconcile.adapter_with_reconciler("voiceos")
        client = reconcile.client_for(reconciler, "k", api.url, allow_loopback=True)
        for minutes in (0, 5):  # the second pass pulls both again: duplicates
            reconcile.run_pass(adapter, reconciler, client, since=None, now=now + timedelta(minutes=minutes))
    (missed,) = sorted(set(api.conversations) - {known})
    assert kinds(events.out()) == [("Call Ended", missed)]


def test_recording_outcomes_are_changes_of_their_own(events: Events) -> None:
    from callvault import store
    from callvault.models import Recording, RecordingState

    send("end-of-call-report", "call-r")  # each with its recording pending
    send("end-of-call-report", "call-s")
    assert kinds(events.out()) == [("Call Ended", "call-r"), ("Call Ended", "call-s")]
    outcomes = {
        "call-r": Recording(state=RecordingState.FAILED, error="expired: HTTP 403"),
        "call-s": Recording(state=RecordingState.ARCHIVED, s3_uri="s3://callvault-archive/audio/cozmox/call-s/r.wav", bytes=3),
    }
    for call_id in outcomes:  # the copier's claim, then its outcome, as it writes them
        assert store.claim_recording("cozmox", call_id, "claim", datetime.now(UTC), 60)
    assert events.out() == []  # a claim is no outcome
    for call_id, outcome in outcomes.items():
        assert store.finish_recording("cozmox", call_id, "claim", outcome)
    failed, archived = events.out()
    assert kinds([failed, archived]) == [("Recording Failed", "call-r"), ("Recording Archived", "call-s")]
    assert failed["detail"]["session"]["recording"]["error"] == "expired: HTTP 403"
    assert archived["detail"]["session"]["recording"]["s3_uri"].endswith("/call-s/r.wav")
    send("status-update-ended", "call-s")  # a later event on the archived recording's call
    assert events.out() == []


def test_an_erasure_says_call_erased_with_the_session_id_and_nothing_personal(events: Events) -> None:
    send("end-of-call-report", "call-e")
    (ended,) = events.out()
    assert erasure.erase("cozmox", "call-e", who="test") is not None
    (erased,) = events.out()
    assert erased["detail-type"] == "Call Erased"
    assert erased["detail"] == {"id": erased["detail"]["id"], "type": "call.erased", "vendor": "cozmox", "session_id": "call-e"}
    personal = {v for v in ended["detail"]["session"].values() if isinstance(v, str) and v not in ("cozmox", "call-e", "ended")}
    assert personal and not any(value in json.dumps(erased) for value in personal)
    assert erasure.erase("cozmox", "call-e", who="test") is not None  # erased again: the tombstone swept, no new change
    assert events.out() == []


def ids_by_change(found: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    ids: dict[tuple[str, str], set[str]] = {}
    for event in found:
        ids.setdefault((event["detail-type"], event["detail"]["session_id"]), set()).add(event["detail"]["id"])
    return ids


CALLS = ("call-1", "call-2", "call-3")
LIFECYCLES = sorted((t, c) for c in CALLS for t in ("Call Started", "Call Ended"))


def test_entries_the_bus_refused_are_put_again_from_their_change(events: Events, monkeypatch: pytest.MonkeyPatch) -> None:
    """PutEvents takes the first entry of a batch and refuses the rest (FailedEntryCount): the
    stream batch is retried from the first change not put, and every change reaches the bus once."""
    real = aws.events()
    put = real.put_events
    refusals = iter([1, 1])  # the first two calls accept one entry; the rest accept all

    def flaky(Entries: list[dict[str, Any]]) -> dict[str, Any]:
        accepted = next(refusals, None)
        if accepted is None or accepted >= len(Entries):
            answer: dict[str, Any] = put(Entries=Entries)
            return answer
        done = put(Entries=Entries[:accepted])["Entries"]
        refused = [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}] * (len(Entries) - accepted)
        return {"FailedEntryCount": len(refused), "Entries": done + refused}

    monkeypatch.setattr(real, "put_events", flaky)
    for call_id in CALLS:
        send("status-update-in-progress", call_id)
        send("end-of-call-report", call_id)
    found = events.out()
    assert sorted(ids_by_change(found)) == LIFECYCLES and len(found) == len(LIFECYCLES)
    assert next(refusals, "spent") == "spent"  # both refusals happened
    assert events.changes.dead_letters == []


def test_a_batch_handed_again_after_a_failure_repeats_each_change_with_its_id(
    events: Events, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another consumer of the same batch fails on its last change: Lambda hands the batch again
    from there, and this consumer puts those changes again, each under the id it had."""
    from callvault_local.functions import load_module

    function = events.changes.function
    module = load_module(function.code_uri, function.handler, function.name)
    failures = iter([True, True])

    def fails_twice(changes: Any) -> int | None:
        return len(changes) - 1 if next(failures, False) else None

    monkeypatch.setattr(module, "CONSUMERS", [*module.CONSUMERS, fails_twice])
    for call_id in CALLS:
        send("status-update-in-progress", call_id)
        send("end-of-call-report", call_id)
    found = events.out()
    ids = ids_by_change(found)
    assert sorted(ids) == LIFECYCLES
    assert all(len(one) == 1 for one in ids.values())  # a repeat carries the same id: consumers drop it
    assert len(found) == len(LIFECYCLES) + 2  # the two changes handed again were put again


def test_events_off_puts_nothing(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVENT_BUS_NAME", raising=False)
    watcher = Events(stored.table)
    with deployed.parameters(CallEvents="false"):  # the template's default
        send("end-of-call-report", "call-off")
        assert watcher.out() == []


def test_events_per_call_by_type(events: Events) -> None:
    for call_id in ("c1", "c2"):
        for name in ("status-update-ringing", "status-update-in-progress", "end-of-call-report", "status-update-ended"):
            send(name, call_id)
    counts = Counter(e["detail-type"] for e in events.out())
    assert counts == {"Call Started": 2, "Call Ended": 2}
