"""A forgotten session stays gone whatever still arrives for it (DESIGN.md "Erasure"): ElevenLabs'
audio in the body, bodies that cannot be parsed, a reconcile pass that lists it, a replay. What
was erased is looked for everywhere: every item and the bytes of every object version (the same
search as tests/integration/test_erasure.py), never the code's own index of keys."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callvault import archive, config, ingest, reconcile, store
from callvault.errors import StorageUnavailable
from callvault.vendors import voiceos
from callvault_local.fake_vendor_apis import FakeVendorApi
from callvault_local.replay import replay
from tests.conftest import Stored, post_webhook
from tests.integration.test_erasure import erase, everything, traces
from tests.sdk_payloads import ELEVENLABS_CONVERSATION_ID, MP3, elevenlabs_event

CONVERSATION = ELEVENLABS_CONVERSATION_ID
# Audio no other object could hold by chance: the MP3 header, then bytes only this call said.
AUDIO = MP3 + b"the caller's own voice, 4111 1111 1111 1111" * 200


def holding(stored: Stored, session_id: str, *secrets: bytes) -> list[str]:
    """Object versions and items that still hold the session's id, or any of `secrets` (as they
    are, or base64 as a body carries them)."""
    needles = [*secrets, *(base64.b64encode(s) for s in secrets)]
    objects, _ = everything(stored)
    found = [f"s3 {key}" for (key, _), body in objects.items() if any(n in body for n in needles)]
    return found + traces(stored, session_id)


def _erase_transcribed_call() -> None:
    assert post_webhook("elevenlabs", "post-call", elevenlabs_event("post_call_transcription")).json["status"] == "stored"
    assert erase("elevenlabs", CONVERSATION)[0] == 200


# -- ElevenLabs post_call_audio: the audio itself in the body


def test_audio_delivered_after_the_erasure_is_stored_nowhere(stored: Stored) -> None:
    _erase_transcribed_call()
    before = everything(stored)

    response = post_webhook("elevenlabs", "post-call", elevenlabs_event("post_call_audio", AUDIO))

    assert (response.status, response.json["status"]) == (200, "forgotten")
    assert everything(stored) == before  # not a version, not a marker, not an item more
    assert holding(stored, CONVERSATION, AUDIO) == []


def test_audio_uploaded_while_the_session_is_erased_is_taken_back(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    """The delivery looked (no tombstone yet) and uploads the audio while the erasure runs start to
    end: its sweeps cannot see an upload not yet complete, so the delivery takes it back."""
    assert post_webhook("elevenlabs", "post-call", elevenlabs_event("post_call_transcription")).status == 200
    upload = archive.upload_stream

    def erased_meanwhile(key: str, *args: Any, **kwargs: Any) -> None:
        if key.startswith("audio/"):
            assert erase("elevenlabs", CONVERSATION)[0] == 200
        upload(key, *args, **kwargs)

    monkeypatch.setattr(archive, "upload_stream", erased_meanwhile)
    response = post_webhook("elevenlabs", "post-call", elevenlabs_event("post_call_audio", AUDIO))

    assert (response.status, response.json["status"]) == (200, "forgotten")
    assert holding(stored, CONVERSATION, AUDIO) == []


# -- bodies that cannot be parsed


def test_an_unfileable_body_naming_a_forgotten_session_is_forgotten_not_quarantined(stored: Stored) -> None:
    """The parse read the session id before it failed (here: audio that is not base64): the body
    belongs to the forgotten session, so it is answered forgotten and kept nowhere."""
    _erase_transcribed_call()
    before = everything(stored)
    body = elevenlabs_event("post_call_audio")
    body["data"]["full_audio"] = "not base64, and private!"

    response = post_webhook("elevenlabs", "post-call", body)

    assert (response.status, response.json["status"], response.json["session_id"]) == (200, "forgotten", CONVERSATION)
    assert everything(stored) == before
    # the same body for a session never erased is still quarantined for a parser fix
    body["data"]["conversation_id"] = "conv_someone_else"
    assert post_webhook("elevenlabs", "post-call", body).status == 400
    assert len(stored.keys("quarantine/elevenlabs/")) == 1


def test_a_body_quarantined_while_its_session_is_erased_is_taken_back(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    assert post_webhook("elevenlabs", "post-call", elevenlabs_event("post_call_transcription")).status == 200
    put_once = archive.put_once

    def erased_meanwhile(key: str, *args: Any) -> str | None:
        if key.startswith("quarantine/"):
            assert erase("elevenlabs", CONVERSATION)[0] == 200
        return put_once(key, *args)

    monkeypatch.setattr(archive, "put_once", erased_meanwhile)
    body = elevenlabs_event("post_call_audio")
    body["data"]["full_audio"] = "not base64, and private!"
    response = post_webhook("elevenlabs", "post-call", body)

    assert (response.status, response.json["status"]) == (200, "forgotten")
    assert holding(stored, CONVERSATION, b"and private!") == []


def test_a_body_whose_session_cannot_be_read_is_kept_and_a_second_forget_removes_it(stored: Stored) -> None:
    """Bytes that are not JSON name no session callvault can read: they are quarantined (400), as
    any such body is. The tombstone holds only a digest, so nothing can match them to the erased
    session on arrival; erasing again finds them by the id they carry."""
    _erase_transcribed_call()
    broken = b'{"type": "post_call_audio", "data": {"conversation_id": "' + CONVERSATION.encode() + b'"'  # cut short
    assert post_webhook("elevenlabs", "post-call", broken).status == 400
    assert stored.keys("quarantine/elevenlabs/")

    status, again = erase("elevenlabs", CONVERSATION)

    assert status == 200 and again["removed"]["quarantined_bodies"] == 1
    assert traces(stored, CONVERSATION) == []


# -- reconcile and replay: the vendor's API still lists the call

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("API_RETRIES", "2")
    monkeypatch.setenv("API_BACKOFF_SECONDS", "0.01")
    config.settings.cache_clear()
    yield
    config.settings.cache_clear()


@pytest.fixture(params=["voiceos", "cozmox"])
def api(request: pytest.FixtureRequest, stored: Stored, quick_retries: None) -> Iterator[FakeVendorApi]:
    with FakeVendorApi(request.param, key="right-key") as fake:
        fake.populate(3, start=NOW - timedelta(minutes=30), spacing=timedelta(minutes=1))
        yield fake


def run(api: FakeVendorApi, now: datetime = NOW) -> reconcile.Report:
    adapter, reconciler = reconcile.adapter_with_reconciler(api.vendor)
    client = reconcile.client_for(reconciler, "right-key", api.url, allow_loopback=True)
    return reconcile.run_pass(adapter, reconciler, client, since=format_iso(NOW - timedelta(hours=1)), now=now)


def format_iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_reconcile_pass_listing_a_forgotten_call_stores_nothing_of_it(api: FakeVendorApi, stored: Stored) -> None:
    victim = "conv-000001"
    assert run(api).stored == 3
    assert erase(api.vendor, victim)[0] == 200
    api.requests.clear()
    before = everything(stored)

    report = run(api, NOW + timedelta(minutes=5))

    # Counted as a duplicate (the contract line's counts add up to what was listed), and apart.
    assert (report.listed, report.stored, report.duplicate, report.failed, report.forgotten) == (3, 0, 3, 0, 1)
    assert api.requests["get"] == 0  # not even fetched: the tombstone answered first
    assert everything(stored)[0] == before[0]  # not an object version written (the items: the watermark moved)
    assert traces(stored, victim) == []
    # A replay of everything archived leaves it gone too.
    assert "stored" not in replay(api.vendor, quarantine=True)
    assert traces(stored, victim) == []


def test_a_call_erased_while_reconcile_fetches_it_is_taken_back(api: FakeVendorApi, stored: Stored) -> None:
    """The pass found no tombstone, then the erasure ran while the conversation was fetched: the
    pipeline's transaction refuses it and the pulled body it archived is deleted."""
    victim = "conv-000002"
    assert run(api).stored == 3
    answer = api.answer

    def erase_on_fetch(method: str, target: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        if victim in target:
            assert erase(api.vendor, victim)[0] == 200
        return answer(method, target, headers, body)

    api.answer = erase_on_fetch  # type: ignore[method-assign]
    api.add(victim, api.conversations[victim].created_at, "ended")
    store_session_rank = store.status_rank

    def behind(vendor: str, session_id: str) -> int | None:  # the table holds it, not yet ended
        return 1 if session_id == victim else store_session_rank(vendor, session_id)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "status_rank", behind)
        report = run(api, NOW + timedelta(minutes=5))

    assert report.forgotten == 1 and report.stored == 0 and report.failed == 0
    assert traces(stored, victim) == []


# -- replay re-files what reconcile pulled


def test_replay_refiles_pulled_bodies_through_the_vendors_reconciler(api: FakeVendorApi, stored: Stored) -> None:
    """Pulled bodies archived whose table write failed (or, as after a parser fix, to be filed
    again): replay files them as the pass would have, `source: pull`; once filed, a duplicate."""
    with pytest.MonkeyPatch.context() as failing:

        def unavailable(*_: object, **__: object) -> str:
            raise StorageUnavailable("injected")

        failing.setattr(store, "record_event", unavailable)
        report = run(api)
    assert report.failed == 3 and not stored.items()
    assert len(stored.keys(f"raw/{api.vendor}/pull/")) == 3  # archived byte for byte before the table failed

    assert replay(api.vendor) == {"stored": 3}

    sessions = sorted(i["session_id"] for i in stored.items() if i["sk"] == store.SESSION_SK)
    assert sessions == sorted(api.conversations)
    events = [i for i in stored.items() if i["sk"].startswith(store.EVENT_SK_PREFIX)]
    assert {(e["source"], e["webhook"]) for e in events} == {("pull", "pull")} and len(events) == 3
    before = everything(stored)
    assert replay(api.vendor) == {"duplicate": 3}
    assert everything(stored) == before
    # and a pass now finds every call up to date
    assert run(api, NOW + timedelta(minutes=5)).stored == 0


def test_a_quarantined_pulled_body_is_stored_by_replay_after_the_parser_fix(stored: Stored, quick_retries: None) -> None:
    with FakeVendorApi("voiceos", key="right-key") as api:
        api.populate(2, start=NOW - timedelta(minutes=30), spacing=timedelta(minutes=1))

        def broken(payload: Any) -> Any:
            raise ValueError("the parser bug of the day")

        with pytest.MonkeyPatch.context() as bug:
            bug.setattr(voiceos, "parse_conversation", broken)
            report = run(api)
        assert report.failed == 2 and not stored.items()
        assert len(stored.keys("quarantine/voiceos/pull/")) == 2

        # the fix ships
        assert replay("voiceos", quarantine=True) == {"stored": 2}
        assert sorted(i["session_id"] for i in stored.items() if i["sk"] == store.SESSION_SK) == sorted(api.conversations)
        again = replay("voiceos", quarantine=True)
        assert again == {"duplicate": 4}  # each call's raw copy and its quarantined copy: the same event


def test_replaying_a_pulled_body_of_a_forgotten_session_is_forgotten(stored: Stored, quick_retries: None) -> None:
    with FakeVendorApi("voiceos", key="right-key") as api:
        body = json.dumps(api.add("conv-gone", NOW - timedelta(minutes=3))).encode()
        run(api)
    assert erase("voiceos", "conv-gone")[0] == 200
    # a copy of the pulled body kept elsewhere, filed again as replay files it
    assert ingest.replay(voiceos.ADAPTER, ingest.PULL, body, NOW, None) == "forgotten"
    assert traces(stored, "conv-gone") == []


def test_the_command_says_how_many_were_forgotten_before_its_contract_line(
    stored: Stored, quick_retries: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from callvault_local import cli, console

    monkeypatch.setattr(console, "use_storage", lambda _args: None)  # the in-process stack the fixture made
    # The command sets these for its process; here they must not outlive the test (metrics tests follow).
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    with FakeVendorApi("voiceos", key="right-key") as api:
        api.populate(2, start=datetime.now(UTC) - timedelta(minutes=30), spacing=timedelta(minutes=1))
        monkeypatch.setenv("CALLVAULT_API_URL_VOICEOS", api.url)
        monkeypatch.setenv("CALLVAULT_API_KEY_VOICEOS", "right-key")
        assert cli.main(["reconcile", "--vendor", "voiceos"]) == 0
        assert erase("voiceos", "conv-000000")[0] == 200
        capsys.readouterr()
        assert cli.main(["reconcile", "--vendor", "voiceos"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == [
        "forgotten 1 (erased sessions the API still lists: counted as duplicate, nothing stored)",
        "reconcile voiceos: listed 2, stored 0, duplicate 2, failed 0",
    ]
    assert traces(stored, "conv-000000") == []
