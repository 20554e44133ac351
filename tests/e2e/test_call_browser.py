"""The call browser in a real browser (headless Chromium, Playwright): the list and its URL state,
a call's page, play and seek, erasure, `callvault ui --url` against a stand-in API that demands
SigV4, the Host check, and an accessibility scan. Writes the README's screenshots (docs/img/)."""

from __future__ import annotations

import http.client
import json
import re
import shlex
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import pytest

from callvault_local.dev import SAMPLE_SEND
from callvault_local.ui import proxy
from tests.e2e.calls import report, send
from tests.e2e.chromium import VIEWPORT, launch, require_chromium
from tests.e2e.conftest import ROOT, RunningStack, dev_env, started_stack
from tests.e2e.sigv4_standin import ACCESS_KEY, REGION, SECRET_KEY, StandIn, stand_in_api
from tests.media import TALK_WAV, MediaHost
from tests.waiting import wait_until

SCREENSHOTS = ROOT / "docs" / "img"
TALK = "call-browser-talk"
UNICODE = "call browser é 2"  # a space and a non-ASCII letter: percent-encoded in links
FAILED = "call-browser-failed"
TURN_SECONDS = 2.5


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _recording_state(api: str, session_id: str) -> str | None:
    status, body = _get(f"{api}/sessions/cozmox/{quote(session_id, safe='')}")
    return body["recording"]["state"] if status == 200 else None


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    require_chromium()
    with started_stack() as running:
        yield running


@pytest.fixture(scope="module")
def calls(stack: RunningStack, media: MediaHost) -> RunningStack:
    """Four calls: one with a 30-second recording archived (and every metric), one whose recording
    failed (and no metric), one with none, one from another vendor."""
    talk = report(TALK, recording_url=f"{media.url}/talk.wav", turns=12, seconds_apart=TURN_SECONDS, speaking=TURN_SECONDS * 0.8)
    send(stack.url, talk)
    send(stack.url, report(UNICODE, recording_url=None, turns=3, createdAt="2026-11-19T10:00:00.000Z"))
    failed = report(FAILED, recording_url=f"{media.url}/missing.wav", createdAt="2026-11-18T10:00:00.000Z")
    del failed["message"]["artifact"]["performanceMetrics"]  # a report that measured nothing
    send(stack.url, failed)
    send(stack.url, report("vapi-call-1", recording_url=None, createdAt="2026-11-17T10:00:00.000Z"), vendor="vapi")
    wait_until(lambda: _recording_state(stack.url, TALK) == "archived", 60, "the recording archived")
    wait_until(lambda: _recording_state(stack.url, FAILED) == "failed", 60, "the failed recording marked failed")
    return stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = launch(playwright)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, errors  # no script failed on any page


def _rows(page: Any) -> list[str]:
    page.wait_for_selector("#status:not(:text('Loading…'))")
    return [row.inner_text() for row in page.locator("#calls tbody tr").all()]


def test_list_newest_first_with_each_call_linked(calls: RunningStack, page: Any) -> None:
    page.goto(f"{calls.url}/ui/")
    rows = _rows(page)
    assert len(rows) == 4 and "vapi" in rows[-1]
    assert rows[1].startswith("2026-11-19 10:00:00") and rows[2].startswith("2026-11-18 10:00:00")
    assert "+14155550142 → +14155550100" in rows[0] and "0:11" in rows[0] and "$0.0734" in rows[0] and "archived" in rows[0]
    assert "failed" in rows[2] and "none" in rows[1]
    links = [a.get_attribute("href") for a in page.locator("#calls tbody a").all()]
    assert "/ui/sessions/cozmox/call%20browser%20%C3%A9%202" in links
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "call-list.png"))
    page.click("text=2026-11-19 10:00:00")
    page.wait_for_selector("h1:has-text('call browser é 2')")


def test_filters_are_the_urls_query(calls: RunningStack, page: Any) -> None:
    page.goto(f"{calls.url}/ui/")
    page.select_option("#f-vendor", "cozmox")
    page.fill("#f-before", "2026-11-19T12:00:00")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**/ui/?vendor=cozmox&created_before=**")
    assert parse_qs(urlsplit(page.url).query) == {"vendor": ["cozmox"], "created_before": ["2026-11-19T12:00"]}
    assert [row.split("\t")[0] for row in _rows(page)] == ["2026-11-19 10:00:00", "2026-11-18 10:00:00"]
    # The link alone shows the same: a fresh page from the URL, its form filled from it.
    page.goto(page.url)
    assert len(_rows(page)) == 2 and page.input_value("#f-vendor") == "cozmox"
    page.goto(f"{calls.url}/ui/?vendor=vapi")
    assert len(_rows(page)) == 1
    page.goto(f"{calls.url}/ui/?status=ringing")
    assert _rows(page) == [] and page.inner_text("#status") == "No call matches these filters."


def test_pages_follow_the_apis_cursor(calls: RunningStack, page: Any) -> None:
    page.goto(f"{calls.url}/ui/?limit=3")
    first = _rows(page)
    page.click("#next")
    page.wait_for_url("**cursor=**")
    second = _rows(page)
    assert len(first) == 3 and len(second) == 1 and not set(first) & set(second)
    assert page.locator("#next").is_hidden()
    page.click("#first")
    assert _rows(page) == first


def test_open_a_call_by_pasting_its_id(calls: RunningStack, page: Any) -> None:
    page.goto(f"{calls.url}/ui/")
    # Two vendor lists, each named for what it does: the filter's, and the one of the call to open.
    assert page.get_by_role("combobox", name="Vendor", exact=True).get_attribute("id") == "f-vendor"
    assert page.get_by_role("combobox", name="Vendor of the call to open").get_attribute("id") == "o-vendor"
    page.select_option("#o-vendor", "cozmox")
    page.fill("#o-id", f"  {FAILED} ")
    page.press("#o-id", "Enter")
    page.wait_for_url(f"**/ui/sessions/cozmox/{FAILED}")
    page.wait_for_selector("#recording")
    assert "could not be archived: " in page.inner_text("#recording")  # and why, as the copier recorded it
    assert page.locator("audio").count() == 0


def _until(page: Any, expression: str) -> Any:
    """The first truthy value of `expression` in the page (polled: the page's CSP forbids the
    eval Playwright's wait_for_function needs, and that CSP is what is tested)."""
    return wait_until(lambda: page.evaluate(expression), 30, expression)


def _player(page: Any, expression: str) -> Any:
    return page.evaluate(f"(() => {{ const a = document.getElementById('player'); return {expression}; }})()")


def test_call_page_plays_and_a_turn_seeks_the_recording(calls: RunningStack, page: Any) -> None:
    ranges: list[str] = []
    moto_host = urlsplit(calls.moto_url).netloc
    page.on("request", lambda r: ranges.append(r.headers.get("range", "")) if moto_host in r.url else None)
    page.goto(f"{calls.url}/ui/sessions/cozmox/{TALK}")
    _until(page, "document.getElementById('player') && document.getElementById('player').readyState >= 1")
    assert abs(_player(page, "a.duration") - len(TALK_WAV[44:]) / 16000) < 0.1  # the archived 30 s, whole
    turns = page.locator("li.turn")
    assert turns.count() == 14 and page.inner_text("#transcript-heading") == "Transcript (14 turns)"
    assert "call reschedule" in turns.nth(3).inner_text() and '{"ok":true}' in turns.nth(4).inner_text()
    # Clicking the eighth spoken turn (12.5 s in) seeks there and plays; that turn is highlighted.
    target = turns.filter(has_text="(6)")
    target.click()
    _until(page, "document.getElementById('player').currentTime >= 12.5")
    wait_until(lambda: target.get_attribute("aria-current") == "true", 30, "the turn being played highlighted")
    assert page.locator("li.turn.playing").count() == 1
    # Enter on a turn's offset seeks too (every turn is reachable by keyboard).
    page.locator("li.turn", has_text="(10)").locator("button.offset").focus()
    page.keyboard.press("Enter")
    _until(page, "Math.abs(document.getElementById('player').currentTime - 22.5) < 1.5")
    assert any(value.startswith("bytes=") for value in ranges), ranges  # S3 (moto) is asked for ranges
    page.evaluate("document.getElementById('player').pause()")
    page.locator("li.turn", has_text="(3)").locator("button.offset").click()
    page.evaluate("document.getElementById('player').pause()")
    page.screenshot(path=str(SCREENSHOTS / "call-page.png"))


def test_call_page_shows_facts_summary_vendor_fields_and_raw_payloads(calls: RunningStack, page: Any) -> None:
    page.goto(f"{calls.url}/ui/sessions/cozmox/{TALK}")
    page.wait_for_selector("#events")
    facts = page.inner_text("#facts")
    assert "Front desk (asst_frontdesk)" in facts and "inbound_phone" in facts and "customer-ended-call" in facts
    assert "Caller booked a table for two at 7pm." in page.inner_text("#summary")
    # The vendor's own fields, folded under their names, one click away.
    fields = page.locator("#vendor-fields details")
    assert fields.get_attribute("open") is None and "org id, structured data, success evaluation" in fields.inner_text()
    fields.locator("summary").click()
    assert "org_acme" in page.inner_text("#vendor-fields")
    events = page.locator("#events tbody tr")
    assert events.count() == 1 and "end-of-call-report" in events.inner_text() and "webhook" in events.inner_text()
    events.locator("summary").click()
    _until(page, "!document.querySelector('#events pre.raw').textContent.startsWith('Loading')")
    raw = json.loads(page.inner_text("#events pre.raw"))
    assert raw["message"]["call"]["id"] == TALK  # the archived body, byte for byte the one sent


def test_call_page_shows_the_cost_once_with_its_lines(calls: RunningStack, page: Any) -> None:
    page.goto(f"{calls.url}/ui/sessions/cozmox/{TALK}")
    page.wait_for_selector("#events")
    assert page.inner_text("main").count("$0.0734") == 1 and "Total $0.0734" in page.inner_text("#cost")
    page.locator("#vendor-fields summary").click()  # the vendor fields open: they do not show the cost again
    shown = page.inner_text("main")
    # The report's itemized `costs` are the cost's lines, in dollars, their minutes beside them...
    lines = [row.inner_text() for row in page.locator("#cost tbody tr").all()]
    assert lines == ["transport · twilio (0.19 minutes)\t$0.0022", "vapi · normal (0.19 minutes)\t$0.0095"]
    assert "These lines add up to $0.0117, not the vendor's total." in page.inner_text("#cost")  # (the sample's are partial)
    # ...and nowhere else: not as a vendor field, not as the facts' row.
    assert shown.count("0.0022") == 1 and "costs" not in page.inner_text("#vendor-fields")
    assert "Cost" not in page.inner_text("#facts")


def _golden_session(name: str) -> dict[str, Any]:
    """The session the read API answered for a vendor's sample payload (tests/fixtures/read-golden)."""
    text = (ROOT / "tests" / "fixtures" / "read-golden" / f"{name}.txt").read_text()
    line = next(line for line in text.splitlines() if line.startswith("GET /sessions/") and "?" not in line.split(":")[0])
    session: dict[str, Any] = json.loads(line.split(": 200 ", 1)[1])
    return session


# A Vapi end-of-call report's `costBreakdown` (the SDK's CostBreakdown): dollars, token and character counts, analysis costs.
VAPI_BREAKDOWN = {
    "transport": 0.0022, "stt": 0.0031, "llm": 0.0152, "tts": 0.0201, "vapi": 0.0095, "total": 0.0505,
    "llmPromptTokens": 1840, "llmCompletionTokens": 96, "ttsCharacters": 410,
    "analysisCostBreakdown": {"summary": 0.0004, "summaryPromptTokens": 300, "structuredData": 0.0},
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "total", "lines", "said"),
    [
        # Retell prices in cents: its lines in dollars, its total (`combined_cost`) not a line.
        ("retell/call-analyzed", "$0.125", ["retell platform\t$0.085", "gpt-4o\t$0.04"], "total duration seconds: 74.5"),
        # ElevenLabs' credits are credits, not dollars.
        ("elevenlabs/post-call-transcription", "$0.0945", [], "412 credits"),
        (
            "voiceos/conversation-ended",
            "$0.1123",
            [
                "voice · elevenlabs (410 characters)\t$0.03",
                "transcriber · deepgram (102 seconds)\t$0.012",
                "language model · openai (1,840 input tokens, 96 output tokens)\t$0.0203",
                "telephony · twilio (102 seconds)\t$0.017",
                "agent · voiceos (102 seconds)\t$0.033",
            ],
            "",
        ),
        (
            "vapi-cost-breakdown",
            "$0.0505",
            [
                "transport\t$0.0022",
                "stt\t$0.0031",
                "llm\t$0.0152",
                "tts\t$0.0201",
                "vapi\t$0.0095",
                "analysis · summary\t$0.0004",
                "analysis · structured data\t$0.00",
            ],
            "1,840 llm prompt tokens · 96 llm completion tokens · 410 tts characters · 300 summary prompt tokens",
        ),
    ],
)
def test_each_vendors_cost_reads_in_dollars(
    calls: RunningStack, page: Any, name: str, total: str, lines: list[str], said: str
) -> None:
    """The page over the read API's answer for each vendor's sample (put in place of a stored
    call's): the breakdown's lines in dollars, what they count beside them, the total once."""
    if name == "vapi-cost-breakdown":
        session = _golden_session("vapi/end-of-call-report")
        session["cost"] = {"total_usd": 0.0505, "breakdown": VAPI_BREAKDOWN}
        del session["vendor_fields"]["costs"]
    else:
        session = _golden_session(name)

    def answer(route: Any) -> None:
        stored = route.fetch(url=f"{calls.url}/ui/sessions/cozmox/{FAILED}")
        embedded = json.dumps(session).replace("<", "\\u003c")
        body = re.sub(
            r'(id="session-data">).*?(</script>)', lambda m: m.group(1) + embedded + m.group(2), stored.text(), flags=re.S
        )
        route.fulfill(response=stored, body=body)

    path = f"/ui/sessions/{session['vendor']}/{quote(session['session_id'], safe='')}"
    page.route(calls.url + path, answer)
    page.goto(calls.url + path)
    page.wait_for_selector("#cost")
    assert [row.inner_text() for row in page.locator("#cost tbody tr").all()] == lines
    cost = page.inner_text("#cost")
    assert "Total " + total in cost and said in cost and page.inner_text("main").count(total) == 1
    assert "not the vendor's total" not in cost  # these lines add up


def test_call_page_shows_the_metrics_a_call_has_and_none_it_lacks(calls: RunningStack, page: Any) -> None:
    page.goto(f"{calls.url}/ui/sessions/cozmox/{TALK}")
    page.wait_for_selector("#metrics")
    metrics = page.inner_text("#metrics").split("\n")[1:]
    # Six turns of each side, each spoken for 2 s (0.8 of 2.5 s), one latency of 1270 ms.
    assert metrics == [
        "Caller interruptions", "1", "Latency p50", "1,270 ms", "Latency p90", "1,270 ms",
        "Agent talk", "12 s", "Customer talk", "12 s",
    ]  # fmt: skip
    assert page.evaluate("[cv.spoken(4.7), cv.spoken(72), cv.spoken(3725), cv.spoken(null)]") == [
        "4.7 s", "1 min 12 s", "1 h 2 min", "—",
    ]  # fmt: skip
    page.goto(f"{calls.url}/ui/sessions/cozmox/{FAILED}")
    page.wait_for_selector("#events")
    assert page.locator("#metrics").count() == 0  # a call that measured nothing shows no empty section
    assert "Latency" not in page.inner_text("main")


def test_unknown_call_says_not_found(calls: RunningStack, page: Any) -> None:
    page.goto(f"{calls.url}/ui/sessions/cozmox/no-such-call")
    page.wait_for_selector("h1:text('Call not found')")
    assert "no-such-call" in page.inner_text("#status")
    page.goto(f"{calls.url}/ui/sessions/nosuchvendor/x")
    page.wait_for_selector("h1:text('Call not found')")


def test_erasing_asks_for_the_id_then_shows_what_was_removed(calls: RunningStack, page: Any) -> None:
    send(calls.url, report("call-browser-erase", recording_url=None))
    page.goto(f"{calls.url}/ui/sessions/cozmox/call-browser-erase")
    page.wait_for_selector("#erase-id")
    button = page.locator("#erase button")
    page.fill("#erase-id", "call-browser-eras")
    assert button.is_disabled()
    page.fill("#erase-id", "call-browser-erase")
    button.click()
    page.wait_for_selector("#removed")
    removed = page.inner_text("#removed")
    assert "items: 2" in removed and "raw bodies: 1" in removed
    assert page.locator("#transcript").count() == 0  # the page no longer shows what was erased
    assert _get(f"{calls.url}/sessions/cozmox/call-browser-erase")[0] == 404


def _raw_request(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    connection.putrequest(method, parts.path, skip_host=True)
    for name, value in (headers or {"Host": parts.netloc}).items():
        connection.putheader(name, value)
    connection.endheaders()
    reply = connection.getresponse()
    body = reply.read()
    connection.close()
    return reply.status, body


def test_pages_answer_only_their_own_host(calls: RunningStack) -> None:
    assert f"Call browser: {calls.url}/ui/" in calls.banner  # make dev prints where it is
    port = urlsplit(calls.url).port
    assert _raw_request(f"{calls.url}/ui/")[0] == 200
    assert _raw_request(f"{calls.url}/ui/", headers={"Host": f"localhost:{port}"})[0] == 200
    status, body = _raw_request(f"{calls.url}/ui/", headers={"Host": f"rebound.example:{port}"})
    assert status == 421 and b"own 127.0.0.1:port" in body
    assert _raw_request(f"{calls.url}/ui/static/call.js", headers={"Host": "127.0.0.1:1"})[0] == 421


def test_no_serious_accessibility_violation(calls: RunningStack, page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()  # axe.js ships in the package: nothing is fetched
    for path in ("/ui/", f"/ui/sessions/cozmox/{TALK}", "/ui/sessions/cozmox/no-such-call"):
        page.goto(calls.url + path)
        page.wait_for_selector("#status:not(:text('Loading…')), #transcript")
        violations = axe.run(page).response["violations"]
        serious = [(v["id"], v["impact"], len(v["nodes"])) for v in violations if v["impact"] in ("serious", "critical")]
        assert not serious, (path, serious)


# ---------------------------------------------------------------- a stack of its own: empty, then 8 calls

LONG = "call-browser-200-turns"
SMALL_SCREEN = {"width": 1280, "height": 800}
AGENT_ID = "asst_7f3c2a9e-4b1d-4e8a-9c6f-2d5e8b1a0c3f"  # an agent with no name: the list shows its id


@dataclass
class FirstCalls:
    stack: RunningStack
    empty_status: str  # what its list said before any call
    suggested: str  # the command that list suggested
    sent: subprocess.CompletedProcess[str]  # that command, run


@pytest.fixture(scope="module")
def first_calls(browser: Any, media: MediaHost) -> Iterator[FirstCalls]:
    """A stack of its own, as a new user finds it: its empty list read, the command it suggests run,
    then seven calls more with long values (agent ids, vendors' ended reasons), one of 200 turns."""
    with started_stack() as own:
        context = browser.new_context(viewport=VIEWPORT)
        empty = context.new_page()
        empty.goto(f"{own.url}/ui/")
        empty.wait_for_selector("#status:not(:text('Loading…'))")
        status = empty.inner_text("#status")
        suggested = empty.inner_text("#first-send") if empty.locator("#first-send").count() else ""
        context.close()
        callvault = str(Path(sys.executable).parent / "callvault")  # as the user runs it, from the activated venv
        sent = subprocess.run(
            [callvault, *shlex.split(suggested)[1:]], cwd=ROOT, env=dev_env(), capture_output=True, text=True, timeout=60
        )
        for index in range(6):
            body = report(f"conv_01jq8x7m2k9v3t{index}wz5ab4cd", recording_url=None, createdAt=f"2026-10-1{index}T10:00:00.000Z")
            body["message"].update(endedReason="assistant-ended-call-after-message-spoken", assistant={"id": AGENT_ID})
            send(own.url, body, vendor="vapi" if index % 2 else "cozmox")
        send(own.url, report(LONG, recording_url=f"{media.url}/talk.wav", turns=200, seconds_apart=0.14))
        wait_until(lambda: _recording_state(own.url, LONG) == "archived", 60, "the long call's recording archived")
        yield FirstCalls(own, status, suggested, sent)


def test_an_empty_list_says_how_to_send_a_first_call_and_eight_calls_fit_a_1280_screen(
    first_calls: FirstCalls, browser: Any
) -> None:
    own = first_calls.stack
    port, moto_port = urlsplit(own.url).port, urlsplit(own.moto_url).port
    assert first_calls.empty_status.startswith("No calls stored yet. Send a sample one from another terminal:")
    assert first_calls.suggested == f"callvault send {SAMPLE_SEND} --port {port} --moto-port {moto_port}"
    assert first_calls.sent.returncode == 0, first_calls.sent.stderr  # the line works as it is shown
    context = browser.new_context(viewport=SMALL_SCREEN)
    page = context.new_page()
    page.goto(f"{own.url}/ui/")
    rows = _rows(page)
    assert len(rows) == 8 and sum(AGENT_ID[:19] + "…" in row for row in rows) == 6  # a long id cut...
    assert page.locator(f"#calls td[title='{AGENT_ID}']").count() == 6  # ...whole in its title
    widths = page.evaluate(
        "(() => { const box = document.querySelector('#calls').parentElement, root = document.documentElement;"
        " return [box.scrollWidth, box.clientWidth, root.scrollWidth, root.clientWidth]; })()"
    )
    assert widths[0] <= widths[1] and widths[2] <= widths[3], widths  # nothing scrolls sideways
    page.screenshot(path=str(SCREENSHOTS / "call-list-1280.png"))
    context.close()


def test_a_200_turn_call_scrolls_its_transcript_in_a_box_that_follows_the_recording(first_calls: FirstCalls, page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    page.goto(f"{first_calls.stack.url}/ui/sessions/cozmox/{LONG}")
    _until(page, "document.getElementById('player') && document.getElementById('player').readyState >= 1")
    assert page.locator("li.turn").count() == 202
    box = page.evaluate("[document.getElementById('turns').scrollHeight, document.getElementById('turns').clientHeight]")
    assert box[0] > 3 * box[1]  # the turns scroll in their box...
    height = page.evaluate("innerHeight")
    assert page.evaluate("document.getElementById('erase').getBoundingClientRect().bottom") < 2 * height  # ...not the page
    # Playing on from a turn, the turn being played stays in the box's view (here 25 s in: turn 180 or so).
    page.locator("li.turn", has_text="(2)").locator("button.offset").click()
    page.evaluate("document.getElementById('player').currentTime = 25")
    _until(
        page,
        "(() => { const list = document.getElementById('turns'), turn = list.querySelector('li.playing');"
        " if (!turn || Number(turn.dataset.index) < 150) return false;"
        " const outer = list.getBoundingClientRect(), inner = turn.getBoundingClientRect();"
        " return inner.top >= outer.top && inner.bottom <= outer.bottom; })()",
    )
    page.evaluate("document.getElementById('player').pause()")
    page.screenshot(path=str(SCREENSHOTS / "call-page-200-turns.png"))
    violations = Axe().run(page).response["violations"]
    assert not [v["id"] for v in violations if v["impact"] in ("serious", "critical")]


# ---------------------------------------------------------------- callvault ui --url


@pytest.fixture(scope="module")
def signed_ui(calls: RunningStack) -> Iterator[tuple[str, StandIn]]:
    """`callvault ui` for a "deployed" stack: the stand-in demands SigV4 before passing a request on."""
    with stand_in_api(calls.url) as stand_in:
        session = boto3.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION)
        api = proxy.signed_api(stand_in.url, session=session)
        assert api.region == REGION
        server = proxy.make_server(api, 0, calls.client("s3"), log=open(__import__("os").devnull, "w"))  # noqa: SIM115
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_address[1]}", stand_in
        server.shutdown()
        server.server_close()


def test_ui_url_reads_a_deployed_stack_signed_with_sigv4(signed_ui: tuple[str, StandIn], page: Any) -> None:
    url, stand_in = signed_ui
    assert _raw_request(f"{stand_in.url}/sessions")[0] == 403  # unsigned: refused by the stand-in
    page.goto(f"{url}/ui/")
    assert len(_rows(page)) == 4
    page.goto(f"{url}/ui/sessions/cozmox/{quote(UNICODE)}")
    page.wait_for_selector("#transcript")
    page.goto(f"{url}/ui/sessions/cozmox/{TALK}")
    _until(page, "document.getElementById('player') && document.getElementById('player').readyState >= 1")
    page.locator("#events summary").click()
    _until(page, "document.querySelector('#events pre.raw').textContent.includes('end-of-call-report')")
    signed = [(method, path.split("?")[0]) for method, path, good in stand_in.seen if good]
    assert ("GET", "/sessions") in signed and ("GET", f"/sessions/cozmox/{quote(UNICODE)}") in signed
    assert ("GET", f"/sessions/cozmox/{TALK}/recording") in signed
    assert [seen for seen in stand_in.seen if not seen[2]] == [("GET", "/sessions", False)]  # only the unsigned probe


def test_ui_url_erases_through_the_signed_api_and_refuses_cross_site_writes(signed_ui: tuple[str, StandIn], page: Any) -> None:
    url, stand_in = signed_ui
    port = urlsplit(url).port
    send_to = stand_in.seen.copy()
    target = f"{url}/sessions/cozmox/{TALK}"
    for refused in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        status, _ = _raw_request(target, "DELETE", {"Host": f"127.0.0.1:{port}", **refused})
        assert status == 403
    assert _raw_request(f"{url}/ui/", headers={"Host": f"rebound.example:{port}"})[0] == 421
    assert _raw_request(f"{url}/sessions", headers={"Host": f"rebound.example:{port}"})[0] == 421
    assert stand_in.seen == send_to  # nothing refused here reached the API
    page.goto(f"{url}/ui/sessions/cozmox/{quote(UNICODE)}")
    page.fill("#erase-id", UNICODE)
    page.click("#erase button")
    page.wait_for_selector("#removed")
    assert ("DELETE", f"/sessions/cozmox/{quote(UNICODE)}", True) in stand_in.seen
