"""Erasure (DESIGN.md "Erasure"): DELETE /sessions/{vendor}/{session_id} through its handler as
API Gateway invokes it, on moto. What was erased is looked for everywhere: every item of the
table and the bytes of every object version of the bucket, not the code's own index of keys."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest

from callvault import config, ingest, store
from callvault.errors import StorageUnavailable
from callvault.vendors import cozmox
from callvault_local.apigw import LambdaContext, http_event
from callvault_local.dev import LocalApi
from callvault_local.functions import load_handler
from callvault_local.replay import replay
from callvault_local.template import routes
from tests.conftest import Stored, payload, post_webhook
from tests.waiting import wait_until

SAMPLE_ID = "call_7d1e5f0a-93b1-4c5e-8f0e-2a6b1c9d4e33"
SAMPLE_TURN = "Can I book a table for two tonight?"
VICTIM, BYSTANDER = "call_victim-0001", "call_bystander-0002"
CALLER = "arn:aws:iam::123456789012:user/privacy-officer"
API = LocalApi()
# Every event of a cozmox call, the tool-calls one only acknowledged ("ignored").
CALL = ("status-update-ringing", "status-update-in-progress", "tool-calls", "conversation-update", "end-of-call-report")


def private_turn(session_id: str) -> str:
    return f"My card number is 4111 for {session_id[::-1]}"


def body_of(name: str, session_id: str, **changes: Any) -> dict[str, Any]:
    """A sample cozmox payload for `session_id`, the caller's turn replaced by one only it says."""
    text = json.dumps(payload(f"cozmox/{name}")).replace(SAMPLE_ID, session_id).replace(SAMPLE_TURN, private_turn(session_id))
    body: dict[str, Any] = json.loads(text)
    body["message"].update(changes)
    return body


def deliver_call(session_id: str) -> list[int]:
    return [post_webhook("cozmox", "server-messages", body_of(name, session_id)).status for name in CALL]


def erase(vendor: str, session_id: str) -> tuple[int, dict[str, Any]]:
    """DELETE through the erase function, as API Gateway invokes it after IAM authorization."""
    (route,) = [r for r in routes() if r.method == "DELETE"]
    path = f"/sessions/{vendor}/{session_id}"
    parameters = {"vendor": vendor, "session_id": session_id}
    event = http_event("DELETE", path, route_key=f"DELETE {route.path}", path_parameters=parameters)
    event["requestContext"]["authorizer"] = {"iam": {"accessKey": "AKIA", "accountId": "123456789012", "userArn": CALLER}}
    result = load_handler(route.code_uri, route.handler, route.function)(event, LambdaContext(route.function))
    return result["statusCode"], json.loads(result["body"])


def read(path: str) -> tuple[int, dict[str, Any]]:
    reply = API.handle("GET", path, {}, b"", "127.0.0.1")
    return reply.status, json.loads(reply.body)


def everything(stored: Stored) -> tuple[dict[tuple[str, str], bytes], list[dict[str, Any]]]:
    """Every object version (delete markers as empty bytes) with its bytes, and every item."""
    s3 = boto3.client("s3")
    objects: dict[tuple[str, str], bytes] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=stored.bucket):
        for version in page.get("Versions", []):
            got = s3.get_object(Bucket=stored.bucket, Key=version["Key"], VersionId=version["VersionId"])
            objects[(version["Key"], version["VersionId"])] = got["Body"].read()
        for marker in page.get("DeleteMarkers", []):
            objects[(marker["Key"], marker["VersionId"])] = b""
    return objects, stored.items()


def traces(stored: Stored, session_id: str) -> list[str]:
    """Where the session's id or its private words still are: object keys and bytes, items."""
    needles = [session_id, private_turn(session_id)]
    objects, items = everything(stored)
    found = [f"s3 {key}" for (key, _), body in objects.items() if any(n in key or n.encode() in body for n in needles)]
    found += [f"item {i['pk']} {i['sk']}" for i in items if any(n in json.dumps(i, default=str) for n in needles)]
    return found


def _leave_orphans(stored: Stored, monkeypatch: pytest.MonkeyPatch, session_id: str) -> None:
    """Bytes naming the session that no item points at: a body archived whose DynamoDB write
    failed, a quarantined body, and recording versions with a delete marker."""
    with monkeypatch.context() as failing:

        def unavailable(*_: object) -> str:
            raise StorageUnavailable("injected")

        failing.setattr(store, "record_event", unavailable)
        late = body_of("status-update-ended", session_id)
        assert post_webhook("cozmox", "server-messages", late).status == 503
    broken = b'{"message": {"type": "end-of-call-report", "call": {"id": "' + session_id.encode() + b'"}'  # cut short
    assert post_webhook("cozmox", "server-messages", broken).status == 400
    s3 = boto3.client("s3")
    legacy = f"sessions/cozmox/{session_id}/transcript/0123.json"  # as items written before issue 12 offloaded it
    s3.put_object(
        Bucket=stored.bucket, Key=legacy, Body=json.dumps([{"role": "user", "text": private_turn(session_id)}]).encode()
    )
    for data in (b"RIFF first copy", b"RIFF second copy"):
        s3.put_object(Bucket=stored.bucket, Key=f"audio/cozmox/{session_id}/0123456789abcdef.wav", Body=data)
    s3.delete_object(Bucket=stored.bucket, Key=f"audio/cozmox/{session_id}/0123456789abcdef.wav")


def test_forget_removes_every_byte_of_the_session_and_nothing_else(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    for session_id in (VICTIM, BYSTANDER):
        assert deliver_call(session_id) == [200] * len(CALL)
        _leave_orphans(stored, monkeypatch, session_id)
    offloaded = stored.keys(f"sessions/cozmox/{VICTIM}/")
    assert offloaded, "a transcript offloaded before transcripts were read from the raw body"
    before_objects, before_items = everything(stored)
    untouched = {k: v for k, v in before_objects.items() if VICTIM.encode() not in v and VICTIM not in k[0]}

    status, answer = erase("cozmox", VICTIM)

    assert status == 200, answer
    assert answer["status"] == "forgotten" and answer["session_id"] == VICTIM
    assert answer["removed"] == {
        "items": 1 + 4,  # the session and its 4 stored events (tool-calls was only acknowledged)
        "raw_bodies": 6,  # 5 delivered (with tool-calls) and the one whose DynamoDB write failed
        "quarantined_bodies": 1,
        "transcripts": len(offloaded),
        "recordings": 3,  # two versions and the delete marker
        "analytics_rows": 0,  # the stream was not delivered here: no analytics file holds it
    }
    assert traces(stored, VICTIM) == []
    after_objects, after_items = everything(stored)
    assert after_objects == untouched  # every other version kept, byte for byte
    (tombstone,) = [i for i in after_items if i["pk"] == store.session_pk("cozmox", VICTIM)]
    assert tombstone["sk"] == store.SESSION_SK  # the session item's place: the transaction's own condition finds it
    assert set(tombstone) == {"pk", "sk", "vendor", "erased_at", "last_swept_at", *answer["removed"]}
    others = [i for i in before_items if i["pk"] != store.session_pk("cozmox", VICTIM)]
    assert sorted(map(str, after_items)) == sorted(map(str, [*others, tombstone]))  # every other item as it was
    assert read(f"/sessions/cozmox/{VICTIM}")[0] == 404
    assert read(f"/sessions/cozmox/{BYSTANDER}")[0] == 200
    assert VICTIM not in json.dumps(read("/sessions?vendor=cozmox")[1])


def test_erasing_twice_is_safe_and_an_unknown_session_is_404(stored: Stored) -> None:
    deliver_call(VICTIM)
    first = erase("cozmox", VICTIM)
    second = erase("cozmox", VICTIM)
    assert first[0] == second[0] == 200
    assert set(second[1]["removed"].values()) == {0} and second[1]["erased_at"] == first[1]["erased_at"]
    assert erase("cozmox", "call_never-seen") == (404, {"error": "no session 'call_never-seen' for cozmox"})
    assert [i for i in stored.items() if i["pk"] == store.session_pk("cozmox", "call_never-seen")] == []
    status, reply = erase("nosuchvendor", VICTIM)
    assert status == 404 and reply["error"].startswith("no vendor 'nosuchvendor'")  # a path naming nothing


def test_erasure_is_logged_with_who_and_counts_but_no_data(stored: Stored, caplog: pytest.LogCaptureFixture) -> None:
    deliver_call(VICTIM)
    caplog.clear()
    erase("cozmox", VICTIM)
    (logged,) = [r for r in caplog.records if r.getMessage() == "session erased"]
    fields = {name: getattr(logged, name, None) for name in ("who", "erased_at", "removed", "session_digest", "vendor")}
    assert fields["who"] == CALLER and fields["erased_at"] and fields["removed"]["items"] == 5  # type: ignore[index]
    assert fields["session_digest"] == store.session_digest("cozmox", VICTIM)
    everything_logged = json.dumps([vars(r) for r in caplog.records], default=str)
    assert VICTIM not in everything_logged and "4111" not in everything_logged


def test_a_forgotten_session_stays_forgotten_redelivered_or_replayed(stored: Stored) -> None:
    deliver_call(VICTIM)
    deliver_call(BYSTANDER)
    assert erase("cozmox", VICTIM)[0] == 200
    snapshot = everything(stored)

    for name in CALL:  # the vendor delivers it all again, the acknowledged tool-calls too
        reply = post_webhook("cozmox", "server-messages", body_of(name, VICTIM))
        assert reply.status == 200 and reply.json["status"] == "forgotten", name
    assert everything(stored) == snapshot  # stored nowhere, not even the raw bodies

    assert "stored" not in replay("cozmox", quarantine=True)
    raw = json.dumps(body_of("end-of-call-report", VICTIM)).encode()  # a copy of a body kept elsewhere
    assert ingest.replay(cozmox.ADAPTER, "server-messages", raw, store_time(), None) == "forgotten"
    assert everything(stored) == snapshot and traces(stored, VICTIM) == []
    assert read(f"/sessions/cozmox/{VICTIM}")[0] == 404


def store_time() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_erasing_during_a_burst_of_webhooks_leaves_the_session_gone(stored: Stored) -> None:
    """Senders keep delivering the session while it is erased: whatever they stored before the
    tombstone is swept, whatever they archived after it is taken back."""
    stop = threading.Event()
    answers: list[str] = []

    def sender(offset: int) -> None:
        step = 0
        while not stop.is_set():
            step += 1
            body = body_of("conversation-update", VICTIM, timestamp=1_700_000_000_000 + offset * 100_000 + step)
            reply = post_webhook("cozmox", "server-messages", body)
            answers.append(reply.json.get("status", str(reply.status)))

    senders = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for thread in senders:
        thread.start()
    try:
        wait_until(lambda: answers.count("stored") >= 8, 120, "8 deliveries stored before the erasure")
        status, _ = erase("cozmox", VICTIM)
        assert status == 200
        wait_until(lambda: answers.count("forgotten") >= 8, 120, "8 deliveries answered forgotten after it")
    finally:
        stop.set()
        for thread in senders:
            thread.join()
    assert set(answers) <= {"stored", "forgotten"}
    assert traces(stored, VICTIM) == []
    assert read(f"/sessions/cozmox/{VICTIM}")[0] == 404


def test_an_expired_session_reads_as_unknown(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSCRIPT_RETENTION_DAYS", "30")
    config.settings.cache_clear()
    deliver_call(VICTIM)
    items = [i for i in stored.items() if i["pk"] == store.session_pk("cozmox", VICTIM)]
    for item in items:  # every item carries its TTL: 30 days after it was last written
        from datetime import datetime

        written = datetime.fromisoformat(str(item.get("updated_at") or item["received_at"]).replace("Z", "+00:00"))
        assert int(item[store.EXPIRES_ATTR]) == int(written.timestamp()) + 30 * 86_400
    assert read(f"/sessions/cozmox/{VICTIM}")[0] == 200

    # 30 days on, before DynamoDB's TTL got round to deleting it
    boto3.client("dynamodb").update_item(
        TableName=stored.table,
        Key={"pk": {"S": store.session_pk("cozmox", VICTIM)}, "sk": {"S": store.SESSION_SK}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1700000000"}},
    )
    assert read(f"/sessions/cozmox/{VICTIM}") == (404, {"error": f"no session {VICTIM!r} for cozmox"})
    assert read("/sessions?vendor=cozmox")[1]["items"] == []


def test_a_recording_copy_that_outlives_the_erasure_deletes_what_it_wrote(
    stored: Stored, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copier downloads while the session is erased: the upload lands after the erasure's
    sweeps, so the copier itself must take it back."""
    from callvault import archive, erasure
    from callvault_local import deployed
    from callvault_local.streams import deliveries
    from tests.media import MediaHost

    monkeypatch.setenv("RECORDING_ALLOW_LOOPBACK", "true")
    config.settings.cache_clear()
    media = MediaHost()
    try:
        body = payload("speaknode/conversation-complete")
        body["data"].update(
            session_id="rec-erased", audio_url=f"{media.url}/call.wav", audio_url_expires_at="2099-01-01T00:00:00Z"
        )
        assert post_webhook("speaknode", "conversation-complete", body).status == 200
        upload = archive.upload_stream

        def erased_meanwhile(*args: Any, **kwargs: Any) -> None:
            # The erase function's invocation, arriving while the copier's runs.
            assert deployed.run_as("SessionsEraseFunction", erasure.erase, "speaknode", "rec-erased", who="test") is not None
            upload(*args, **kwargs)

        monkeypatch.setattr(archive, "upload_stream", erased_meanwhile)
        (copier,) = deliveries(stored.table, only="RecordingsArchiveFunction", backoff_seconds=0, log=lambda _: None)
        copier.poll()
    finally:
        media.close()
    assert traces(stored, "rec-erased") == []


def test_no_writer_of_the_session_item_touches_its_tombstone(stored: Stored) -> None:
    """The tombstone is the session item: the recording copier's claim, release and finish, and
    the event's transaction, each find it and write nothing."""
    from datetime import UTC, datetime

    from callvault.models import Recording, RecordingState

    body = payload("speaknode/conversation-complete")
    body["data"].update(session_id="rec-pending", audio_url="https://media.example.com/a.wav")
    assert post_webhook("speaknode", "conversation-complete", body).status == 200
    assert erase("speaknode", "rec-pending")[0] == 200
    snapshot = everything(stored)

    assert store.claim_recording("speaknode", "rec-pending", "claim-1", datetime.now(UTC), 300) is None
    store.release_recording("speaknode", "rec-pending", "claim-1", "HTTP 503")
    assert not store.finish_recording("speaknode", "rec-pending", "claim-1", Recording(state=RecordingState.ARCHIVED))
    assert post_webhook("speaknode", "conversation-complete", body).json["status"] == "forgotten"
    assert everything(stored) == snapshot and traces(stored, "rec-pending") == []
