"""Reconcile against loopback fakes of the vendors' APIs (callvault_local.fake_vendor_apis):
what the webhooks missed is filed once, through the webhook path, and nothing is written twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callvault import config, reconcile, sessions, store
from callvault.vendor_api import ApiClient, ApiError
from callvault_local.fake_vendor_apis import Conversation, FakeVendorApi
from callvault_local.streams import deliveries
from tests.conftest import Stored, post_webhook

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
START = NOW - timedelta(minutes=50)  # inside the next pass's overlap (an hour)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("API_RETRIES", "3")
    monkeypatch.setenv("API_BACKOFF_SECONDS", "0.01")
    config.settings.cache_clear()
    yield
    config.settings.cache_clear()


PULL_VENDORS = ["voiceos", "cozmox", "vapi", "retell", "elevenlabs"]
# Where each API's call keeps its id, and the path that fetches one.
ID_KEY = {"voiceos": "id", "cozmox": "id", "vapi": "id", "retell": "call_id", "elevenlabs": "conversation_id"}
ONE_PATH = {
    "voiceos": "/conversations/{}",
    "cozmox": "/calls/{}",
    "vapi": "/call/{}",
    "retell": "/v2/get-call/{}",
    "elevenlabs": "/v1/convai/conversations/{}",
}


@pytest.fixture(params=PULL_VENDORS)
def api(request: pytest.FixtureRequest, stored: Stored) -> Iterator[FakeVendorApi]:
    with FakeVendorApi(request.param, key="right-key") as fake:
        yield fake


def client(api: FakeVendorApi, key: str = "right-key") -> ApiClient:
    _, reconciler = reconcile.adapter_with_reconciler(api.vendor)
    return reconcile.client_for(reconciler, key, api.url, allow_loopback=True)


def run(api: FakeVendorApi, *, key: str = "right-key", since: str | None = None, now: datetime = NOW) -> reconcile.Report:
    adapter, reconciler = reconcile.adapter_with_reconciler(api.vendor)
    return reconcile.run_pass(adapter, reconciler, client(api, key), since=since, now=now)


def session_ids(stored: Stored, vendor: str) -> list[str]:
    return sorted(i["session_id"] for i in stored.items() if i["sk"] == "SESSION" and i["vendor"] == vendor)


def normalized(vendor: str, session_id: str) -> dict[str, Any]:
    session = sessions.get_session(vendor, session_id)
    assert session is not None
    return session.model_dump(exclude={"events"})


def webhook_for(api: FakeVendorApi, conversation_id: str) -> None:
    """What the vendor's webhook would have delivered for this call (VoiceOS: the conversation
    in a `conversation:ended` event)."""
    body = api.conversations[conversation_id].body
    response = post_webhook("voiceos", "events", {"event": f"conversation:{body['status']}", "data": body})
    assert response.status == 200 and response.json["status"] == "stored", response


def test_every_conversation_becomes_one_session_and_a_second_pass_stores_nothing(api: FakeVendorApi, stored: Stored) -> None:
    api.populate(12, start=START, spacing=timedelta(minutes=2))
    api.max_page = 5  # the client asks for 100, the API gives 5: three pages
    first = run(api)
    assert (first.listed, first.stored, first.duplicate, first.failed) == (12, 12, 0, 0)
    assert first.recovered == 12 and first.ok
    assert session_ids(stored, api.vendor) == sorted(api.conversations)
    events = [i for i in stored.items() if i["sk"].startswith("EVENT#")]
    assert len(events) == 12 and {e["source"] for e in events} == {"pull"} and {e["webhook"] for e in events} == {"pull"}
    raw = stored.keys(f"raw/{api.vendor}/pull/")
    assert len(raw) == 12
    # Byte for byte: each archived body is exactly what the API answered for that conversation.
    archived = {json.loads(stored.body(key))[ID_KEY[api.vendor]]: stored.body(key) for key in raw}
    assert archived["conv-000003"] == api.answer("GET", _one_path(api, "conv-000003"), _auth(api))[2]
    api.requests.clear()
    writes_before = len(stored.items()), len(stored.keys())

    second = run(api, now=NOW + timedelta(minutes=5))
    assert (second.listed, second.stored, second.duplicate, second.failed) == (12, 0, 12, 0)
    assert (len(stored.items()), len(stored.keys())) == writes_before  # no session, event or object written
    assert api.requests["get"] == 0  # the unchanged ones were not fetched again


def _one_path(api: FakeVendorApi, conversation_id: str) -> str:
    return ONE_PATH[api.vendor].format(conversation_id)


def _auth(api: FakeVendorApi) -> dict[str, str]:
    return {"authorization": f"Bearer {api.key}", "xi-api-key": api.key}


def test_a_pulled_conversation_is_the_session_its_webhook_would_have_made(stored: Stored) -> None:
    with FakeVendorApi("voiceos", key="right-key") as api:
        api.populate(6, start=START, spacing=timedelta(minutes=5))
        delivered = ["conv-000001", "conv-000004"]
        for conversation_id in delivered:
            webhook_for(api, conversation_id)
        twins = {cid: normalized("voiceos", cid) for cid in delivered}

        report = run(api)
        assert (report.listed, report.stored, report.duplicate) == (6, 4, 2)  # the webhooks' two are up to date
        assert session_ids(stored, "voiceos") == sorted(api.conversations)
        assert all(len(stored.events("voiceos", cid)) == 1 for cid in api.conversations)
        # The same call known only from the API is normalized exactly like its webhook twin.
        for conversation_id in delivered:
            original, clone_id = api.conversations[conversation_id], conversation_id + "-pulled"
            api.conversations[clone_id] = Conversation(clone_id, original.created_at, dict(original.body, id=clone_id), False)
        run(api, now=NOW + timedelta(minutes=1))
        for conversation_id, twin in twins.items():
            assert normalized("voiceos", conversation_id + "-pulled") | {"session_id": conversation_id} == twin


def test_the_recording_endpoint_gives_the_url_the_copier_archives(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECORDING_ALLOW_LOOPBACK", "true")
    config.settings.cache_clear()
    with FakeVendorApi("voiceos", key="right-key") as api:
        api.add("with-audio", START, "ended")
        api.add("still-running", START + timedelta(minutes=1), "started")
        api.add("no-audio", START + timedelta(minutes=2), "ended", recording=False)
        run(api)
        assert api.requests["recording"] == 2  # ended ones only; a 404 is "no recording", not a failure
        (copier,) = deliveries(stored.table, only="RecordingsArchiveFunction", backoff_seconds=0, log=lambda _: None)
        copier.poll()
        recording = stored.session("voiceos", "with-audio")
        assert recording["recording_state"] == "archived" and recording["recording_source_url"].endswith("/media/with-audio.wav")
        assert stored.keys("audio/voiceos/with-audio/")
        assert "recording_state" not in stored.session("voiceos", "no-audio")


@pytest.mark.parametrize(("total", "page"), [(3, 1), (4, 2), (5, 2)], ids=["limit-1", "exact-multiple", "part-page"])
def test_paging_boundaries(api: FakeVendorApi, stored: Stored, total: int, page: int) -> None:
    api.max_page = page
    api.populate(total, start=START, spacing=timedelta(minutes=1))
    report = run(api)
    assert (report.listed, report.stored, report.failed) == (total, total, 0)
    assert session_ids(stored, api.vendor) == sorted(api.conversations)
    # Vapi's `GET /call` has no cursor: each next page is asked for at the last one's oldest
    # instant (that call again, skipped), and the listing ends at an empty page.
    vapi_pages = {(3, 1): 7, (4, 2): 5, (5, 2): 6}
    assert api.requests["list"] == (vapi_pages[total, page] if api.vendor == "vapi" else -(-total // page))


def test_an_empty_window_lists_nothing_and_moves_the_watermark(api: FakeVendorApi, stored: Stored) -> None:
    report = run(api)
    assert (report.listed, report.stored, report.failed) == (0, 0, 0)
    assert api.requests["list"] == 1
    assert reconcile.window_start(api.vendor, NOW) == "2026-11-20T11:00:00.000Z"  # watermark (NOW) minus the hour's overlap


def test_a_conversation_inserted_while_paging_is_not_lost(api: FakeVendorApi, stored: Stored) -> None:
    api.max_page = 3
    api.populate(7, start=START, spacing=timedelta(minutes=1))

    def insert_once(fake: FakeVendorApi, page: int) -> None:
        if fake.pages_served == 1:  # newest first: it shifts every later page by one
            fake.add("inserted", START + timedelta(seconds=90), "ended")

    api.after_list_page = insert_once
    first = run(api)
    assert first.failed == 0
    api.after_list_page = None
    run(api, now=NOW + timedelta(minutes=5))  # the overlap covers what the first pass saw only in part
    assert session_ids(stored, api.vendor) == sorted(api.conversations)
    assert all(len(stored.events(api.vendor, cid)) == 1 for cid in api.conversations)


def test_a_conversation_that_ends_between_passes_is_stored_again(api: FakeVendorApi, stored: Stored) -> None:
    api.add("call-1", START, "started")
    run(api)
    assert stored.session(api.vendor, "call-1")["status"] == "in_progress"
    api.add("call-1", START, "ended")
    report = run(api, now=NOW + timedelta(minutes=5))
    assert (report.stored, report.recovered) == (1, 0)
    assert stored.session(api.vendor, "call-1")["status"] == "ended"
    assert len(stored.events(api.vendor, "call-1")) == 2


def test_a_call_longer_than_the_overlap_still_ends(api: FakeVendorApi, stored: Stored) -> None:
    now = datetime.now(UTC)  # open sessions are found by when callvault first heard of them
    long_ago = now - timedelta(hours=5)  # before every later pass's window
    api.add("long-call", long_ago, "started")
    api.add("old-ended", long_ago, "ended")
    run(api, now=now)  # the first pass looks back a day
    assert stored.session(api.vendor, "long-call")["status"] == "in_progress"
    gets = api.requests["get"]
    api.add("long-call", long_ago, "ended")  # its end webhook is lost
    report = run(api, now=now + timedelta(hours=2))
    assert (report.listed, report.stored, report.failed) == (1, 1, 0)
    assert stored.session(api.vendor, "long-call")["status"] == "ended"
    assert api.requests["get"] == gets + 1  # the open one only, fetched by id; not the ended one
    assert run(api, now=now + timedelta(hours=2, minutes=5)).listed == 0  # ended: no longer rechecked


def test_429_with_retry_after_then_success(api: FakeVendorApi, stored: Stored) -> None:
    api.populate(3, start=START)
    api.fail_next(429, times=1, retry_after="0")
    api.fail_next(503, times=1)
    report = run(api)
    assert (report.stored, report.failed) == (3, 0)
    assert api.requests["fault 429"] == 1 and api.requests["fault 503"] == 1
    assert report.requests == sum(api.requests.values())  # every retry counted as the request it is


def test_retry_after_is_honoured(api: FakeVendorApi, stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("time.sleep", waits.append)
    api.populate(1, start=START)
    api.fail_next(429, times=1, retry_after="7")
    assert run(api).stored == 1
    assert 7 in waits


def test_an_api_down_for_a_run_loses_nothing_at_the_next(api: FakeVendorApi, stored: Stored) -> None:
    api.populate(8, start=START, spacing=timedelta(minutes=1))
    api.max_page = 3
    api.down = True
    down = run(api)
    assert down.failed == 1 and down.stored == 0 and not down.ok
    assert store.get_watermark(api.vendor) is None
    api.down = False
    later = run(api, now=NOW + timedelta(minutes=10))
    assert later.ok and later.stored == 8
    assert session_ids(stored, api.vendor) == sorted(api.conversations)


def test_a_failing_page_leaves_the_watermark_where_it_was(api: FakeVendorApi, stored: Stored) -> None:
    api.populate(6, start=START, spacing=timedelta(minutes=1))
    api.max_page = 2
    assert run(api).ok
    mark = reconcile.window_start(api.vendor, NOW + timedelta(hours=1))

    first_page = api.pages_served + 1

    def fail_second_page(fake: FakeVendorApi, page: int) -> None:
        if fake.pages_served == first_page:
            fake.fail_next(500, times=10, kind="list")

    api.after_list_page = fail_second_page
    report = run(api, now=NOW + timedelta(minutes=30))
    assert report.failed == 1 and report.listed == 2
    assert reconcile.window_start(api.vendor, NOW + timedelta(hours=1)) == mark


def test_a_wrong_key_is_refused_and_nothing_is_stored(api: FakeVendorApi, stored: Stored) -> None:
    api.populate(3, start=START)
    report = run(api, key="wrong-key")
    assert report.refused and "refused the key" in report.refused and "401" in report.refused
    assert not report.ok and report.stored == 0
    assert stored.items() == [] and stored.keys() == []
    assert api.requests["unauthorized"] == 1  # a refused key is not retried


def test_webhook_then_pull_and_pull_then_webhook_make_one_session_going_forward(stored: Stored) -> None:
    with FakeVendorApi("voiceos", key="right-key") as api:
        # Webhook first (ended), pull of an older state afterwards: the status stays ended.
        ended = api.add("a", START, "ended")
        post_webhook("voiceos", "events", {"event": "conversation:ended", "data": ended})
        api.add("a", START, "started")
        report = run(api)
        assert report.duplicate == 1 and stored.session("voiceos", "a")["status"] == "ended"
        # Pull first (started), then the webhook's ended, then its started arriving late.
        api.add("b", START + timedelta(minutes=1), "started")
        run(api, since="2026-11-20T11:00:00Z")
        started = api.conversations["b"].body
        ended_b = api.add("b", START + timedelta(minutes=1), "ended")
        assert post_webhook("voiceos", "events", {"event": "conversation:ended", "data": ended_b}).json["status"] == "stored"
        assert post_webhook("voiceos", "events", {"event": "conversation:started", "data": started}).json["status"] == "stored"
        assert stored.session("voiceos", "b")["status"] == "ended"
        assert run(api, now=NOW + timedelta(minutes=5)).stored == 0
        assert session_ids(stored, "voiceos") == ["a", "b"]
        sources = sorted(e["source"] for e in stored.events("voiceos", "b"))
        assert sources == ["pull", "webhook", "webhook"]
        read = sessions.get_session("voiceos", "b")
        assert read is not None and sorted(e.source for e in read.events) == sources


def test_a_vendor_without_a_pull_api_says_so() -> None:
    with pytest.raises(reconcile.ReconcileUnavailable, match="no API that lists calls"):
        reconcile.adapter_with_reconciler("speaknode")
    _, reconciler = reconcile.adapter_with_reconciler("cozmox")
    with pytest.raises(reconcile.ReconcileUnavailable, match="CALLVAULT_API_URL_COZMOX"):
        reconcile.client_for(reconciler, "key", None, allow_loopback=False)


def test_the_api_url_gets_the_recordings_address_checks() -> None:
    _, reconciler = reconcile.adapter_with_reconciler("voiceos")
    for url in ("http://api.voiceos.io", "https://10.0.0.1/", "https://169.254.169.254/", "https://127.0.0.1/"):
        with pytest.raises(ApiError):
            reconcile.client_for(reconciler, "key", url, allow_loopback=False).request("GET", "/conversations")


def test_the_fakes_answer_in_the_vendors_sdk_types() -> None:
    """The fakes are built from the SDKs' models: their answers validate against them."""
    from cozmoxai.types import CallListResponse, CallRetrieveResponse
    from voiceos.models.conversation_recording import ConversationRecording
    from voiceos.models.conversation_response import ConversationResponse
    from voiceos.models.conversations_pagination import ConversationsPagination

    auth = {"authorization": "Bearer k", "x-api-key": "k"}
    with FakeVendorApi("voiceos", key="k") as voiceos, FakeVendorApi("cozmox", key="k") as cozmox:
        for fake in (voiceos, cozmox):
            fake.add("c-1", START, "ended")
            fake.add("c-2", START, "started")
        page = ConversationsPagination.from_json(voiceos.answer("GET", "/conversations?limit=1", auth)[2].decode())
        assert page is not None and page.has_more and page.index == 0 and len(page.items) == 1
        assert ConversationResponse.from_json(voiceos.answer("GET", "/conversations/c-2", auth)[2].decode()) is not None
        recording = voiceos.answer("GET", "/conversations/c-1/recording", auth)[2].decode()
        assert ConversationRecording.from_json(recording) is not None
        listing = CallListResponse.model_validate_json(cozmox.answer("GET", "/calls?size=1", auth)[2])
        assert listing.meta is not None and listing.meta.total_pages == 2 and listing.data
        call = CallRetrieveResponse.model_validate_json(cozmox.answer("GET", "/calls/c-1", auth)[2])
        assert call.recording_url and call.status == "completed"


def webhook_twin(vendor: str, call: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The webhook route and body that would have carried this (ended) call from the vendor: Vapi's
    end-of-call-report (the call, and its artifact and analysis beside it), Retell's call_analyzed,
    ElevenLabs' post_call_transcription."""
    if vendor == "vapi":
        report = {
            "type": "end-of-call-report",
            "timestamp": 1_795_400_000_000,
            **{k: call[k] for k in ("endedReason", "cost", "costs", "artifact", "analysis", "startedAt", "endedAt")},
            "assistant": call["assistant"],
            "customer": call["customer"],
            "call": call,
        }
        return "server-messages", {"message": report}
    if vendor == "retell":
        return "events", {"event": "call_analyzed", "call": call}
    return "post-call", {"type": "post_call_transcription", "event_timestamp": 1_795_400_000, "data": call}


@pytest.mark.parametrize("vendor", ["vapi", "retell", "elevenlabs"])
def test_webhooks_for_some_calls_then_one_pass_files_each_once_normalized_like_its_webhook_twin(
    stored: Stored, vendor: str
) -> None:
    with FakeVendorApi(vendor, key="right-key") as api:
        for n in range(6):
            api.add(f"call-{n}", START + timedelta(minutes=5 * n), "ended")
        delivered = ["call-1", "call-4"]
        for call_id in delivered:
            webhook, body = webhook_twin(vendor, api.conversations[call_id].body)
            response = post_webhook(vendor, webhook, body)
            assert response.status == 200 and response.json["status"] == "stored", response
        twins = {call_id: normalized(vendor, call_id) for call_id in delivered}

        report = run(api)
        assert (report.listed, report.stored, report.duplicate, report.recovered) == (6, 4, 2, 4)
        assert session_ids(stored, vendor) == sorted(api.conversations)
        assert all(len(stored.events(vendor, call_id)) == 1 for call_id in api.conversations)
        assert run(api, now=NOW + timedelta(minutes=5)).stored == 0
        # The same call known only from the API: its session is exactly its webhook twin's.
        for call_id in delivered:
            original, clone_id = api.conversations[call_id], call_id + "-pulled"
            body = dict(original.body, **{ID_KEY[vendor]: clone_id})
            api.conversations[clone_id] = Conversation(clone_id, original.created_at, body)
        assert run(api, now=NOW + timedelta(minutes=10)).stored == 2
        for call_id, twin in twins.items():
            pulled = normalized(vendor, call_id + "-pulled")
            if vendor == "elevenlabs":  # its recording link is the API's audio URL of that very conversation
                pulled["recording"]["source_url"] = pulled["recording"]["source_url"].replace(call_id + "-pulled", call_id)
            assert pulled | {"session_id": call_id} == twin
            assert twin["transcript"] and twin["summary"] and twin["ended_at"]  # a whole call, not an empty one


@pytest.mark.parametrize("vendor", ["vapi", "retell", "elevenlabs"])
def test_a_webhook_and_a_pull_in_either_order_make_one_session_going_forward(stored: Stored, vendor: str) -> None:
    with FakeVendorApi(vendor, key="right-key") as api:
        # The webhook's ended call first, then a pull that still sees it running: stays ended.
        ended = api.add("a", START, "ended")
        webhook, body = webhook_twin(vendor, ended)
        assert post_webhook(vendor, webhook, body).json["status"] == "stored"
        api.add("a", START, "started")
        assert run(api).stored == 0
        assert stored.session(vendor, "a")["status"] == "ended"
        # A pull of the running call first, then the webhook of its end: ended, both events kept.
        api.add("b", START + timedelta(minutes=1), "started")
        assert run(api, since="2026-11-20T11:00:00Z").stored == 1
        assert stored.session(vendor, "b")["status"] == "in_progress"
        webhook, body = webhook_twin(vendor, api.add("b", START + timedelta(minutes=1), "ended"))
        assert post_webhook(vendor, webhook, body).json["status"] == "stored"
        assert stored.session(vendor, "b")["status"] == "ended"
        assert run(api, now=NOW + timedelta(minutes=5)).stored == 0
        assert session_ids(stored, vendor) == ["a", "b"]
        assert sorted(e["source"] for e in stored.events(vendor, "b")) == ["pull", "webhook"]


@pytest.mark.parametrize("vendor", ["vapi", "retell"])
def test_a_pulled_calls_recording_url_is_archived_by_the_copier(
    stored: Stored, monkeypatch: pytest.MonkeyPatch, vendor: str
) -> None:
    monkeypatch.setenv("RECORDING_ALLOW_LOOPBACK", "true")
    config.settings.cache_clear()
    with FakeVendorApi(vendor, key="right-key") as api:
        api.add("with-audio", START, "ended")
        api.add("still-running", START + timedelta(minutes=1), "started")
        run(api)
        (copier,) = deliveries(stored.table, only="RecordingsArchiveFunction", backoff_seconds=0, log=lambda _: None)
        copier.poll()
        recording = stored.session(vendor, "with-audio")
        assert recording["recording_state"] == "archived"
        assert recording["recording_source_url"] == api.media_url("with-audio")
        assert stored.keys(f"audio/{vendor}/with-audio/")
        assert "recording_state" not in stored.session(vendor, "still-running")


def test_a_retell_call_that_just_ended_is_fetched_again_for_its_analysis(stored: Stored) -> None:
    with FakeVendorApi("retell", key="right-key") as api:
        body = api.add("call-1", NOW - timedelta(minutes=4), "ended")  # ended a minute later
        api.conversations["call-1"].body = {k: v for k, v in body.items() if k != "call_analysis"}
        assert run(api).stored == 1
        assert stored.session("retell", "call-1")["status"] == "ended"
        again = run(api, now=NOW + timedelta(minutes=5))  # not analysed yet: fetched, unchanged, nothing written
        assert (again.stored, again.duplicate, api.requests["get"]) == (0, 1, 2)
        api.conversations["call-1"].body = body  # analysed now; its call_analyzed webhook is lost
        assert run(api, now=NOW + timedelta(minutes=6)).stored == 1
        assert normalized("retell", "call-1")["summary"] == body["call_analysis"]["call_summary"]
        later = run(api, now=NOW + timedelta(minutes=15))  # past the analysis grace: the table's status decides
        assert (later.listed, later.duplicate, api.requests["get"]) == (1, 1, 3)


def test_an_elevenlabs_conversation_still_processing_stays_open_until_done(stored: Stored) -> None:
    with FakeVendorApi("elevenlabs", key="right-key") as api:
        done = api.add("conv-1", START, "ended")
        processing = {k: v for k, v in done.items() if k != "analysis"} | {"status": "processing"}
        api.conversations["conv-1"].body = processing
        run(api)
        session = normalized("elevenlabs", "conv-1")
        assert session["status"] == "in_progress" and session["ended_at"] and session["summary"] is None
        api.conversations["conv-1"].body = done
        assert run(api, now=NOW + timedelta(minutes=5)).stored == 1
        session = normalized("elevenlabs", "conv-1")
        assert session["status"] == "ended" and session["summary"] == done["analysis"]["transcript_summary"]


def test_the_new_fakes_answer_in_the_vendors_sdk_types() -> None:
    """Vapi's, Retell's and ElevenLabs' fakes are built from their SDKs' models."""
    from elevenlabs.types.get_conversation_response_model import GetConversationResponseModel
    from elevenlabs.types.get_conversations_page_response_model import GetConversationsPageResponseModel
    from retell.types.call_list_response import CallListResponse
    from retell.types.phone_call_response import PhoneCallResponse
    from vapi.core.pydantic_utilities import parse_obj_as
    from vapi.types.call import Call
    from vapi.types.server_message_end_of_call_report import ServerMessageEndOfCallReport

    auth = {"authorization": "Bearer k", "xi-api-key": "k"}
    with (
        FakeVendorApi("vapi", key="k") as vapi,
        FakeVendorApi("retell", key="k") as retell,
        FakeVendorApi("elevenlabs", key="k") as elevenlabs,
    ):
        for fake in (vapi, retell, elevenlabs):
            fake.add("c-1", START, "ended")
            fake.add("c-2", START + timedelta(minutes=1), "started")
        calls = parse_obj_as(list[Call], json.loads(vapi.answer("GET", "/call?limit=1", auth)[2]))
        assert [c.id for c in calls] == ["c-2"]
        call = parse_obj_as(Call, json.loads(vapi.answer("GET", "/call/c-1", auth)[2]))
        assert call.artifact and call.artifact.messages and call.analysis and call.analysis.summary
        report = parse_obj_as(ServerMessageEndOfCallReport, webhook_twin("vapi", vapi.conversations["c-1"].body)[1]["message"])
        assert report.call and report.call.id == "c-1"
        listing = CallListResponse.model_validate_json(
            retell.answer("POST", "/v3/list-calls", auth, json.dumps({"limit": 1}).encode())[2]
        )
        assert listing.has_more and listing.pagination_key and [i.call_id for i in listing.items] == ["c-2"]
        retell_call = PhoneCallResponse.model_validate_json(retell.answer("GET", "/v2/get-call/c-1", auth)[2])
        assert retell_call.transcript_object and retell_call.call_analysis and retell_call.recording_url
        page = GetConversationsPageResponseModel.model_validate_json(
            elevenlabs.answer("GET", "/v1/convai/conversations?page_size=1", auth)[2]
        )
        assert page.has_more and page.next_cursor and [c.conversation_id for c in page.conversations] == ["c-2"]
        one = GetConversationResponseModel.model_validate_json(elevenlabs.answer("GET", "/v1/convai/conversations/c-1", auth)[2])
        assert one.transcript and one.analysis and one.metadata.phone_call
