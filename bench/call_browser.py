"""The call browser, measured in headless Chromium (Debian's package, driven by Playwright).

    make bench      (or: uv run python -m bench.call_browser)

On a local stack (moto as a real endpoint, the API on loopback, as `make dev` runs them):
- the list: 10,000 sessions stored (200 through the webhook handlers, copied up to 10,000 as
  bench.listing does); time from navigation to a painted page of 50 calls, against the floor of
  the API's own answer to the same page (GET /sessions?limit=50);
- a call with a 200-turn transcript: time from navigation to its 200 turns on screen, against
  the API's answer for that session;
- a 60-minute recording (8 kHz WAV, archived by the recording copier from a loopback host):
  bytes Chromium fetched from S3 (moto) to load it, seek to its middle and play there, against
  the file's size (the floor a player without Range requests would pay);
- the accessibility scan (axe-core, shipped in axe-playwright-python): every finding by impact.
Wall times are this machine's, under whatever else runs; the ratios are what carry over.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import statistics
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
import wave
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/callvault"), str(ROOT / "src")]

from callvault_local.offline import isolate  # noqa: E402

isolate("bench", POWERTOOLS_LOG_LEVEL="ERROR", CALLVAULT_SECRET_CURSOR="bench-cursor-key")

SESSIONS, SEEDED, PAGE, TURNS, HOUR = 10_000, 200, 50, 200, 3600
REPEATS = 3


def hour_wav(seconds: int = HOUR, rate: int = 8000) -> bytes:
    """A real WAV `seconds` long (a 440 Hz tone), built from one second repeated."""
    second = b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * 440 * n / rate))) for n in range(rate))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(second * seconds)
    return out.getvalue()


def serve_bytes(body: bytes) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "audio/wav")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/hour.wav"


def timed_get(url: str) -> float:
    """Seconds to read `url`; a 503 (moto's storage timing out under load) is asked again, and timed afresh."""
    for _ in range(5):
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=60) as reply:  # noqa: S310 - loopback  # nosec B310
                reply.read()
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                raise
            continue
        return time.perf_counter() - started
    raise RuntimeError(f"{url} kept answering 503")


def wait_for(page: Any, expression: str, within: float = 120) -> None:
    deadline = time.monotonic() + within
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        time.sleep(0.005)


def paint_seconds(browser: Any, url: str, selector: str) -> float:
    """Navigation to `selector` present, in a fresh context (nothing cached)."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_selector(selector, state="attached", timeout=120_000)
    elapsed = time.perf_counter() - started
    context.close()
    return elapsed


def main() -> None:
    from playwright.sync_api import sync_playwright

    from bench.listing import grow, seed
    from callvault_local import dev
    from tests.e2e.calls import report, send
    from tests.e2e.chromium import CHROMIUM, VIEWPORT, launch

    if not CHROMIUM.exists():
        sys.exit(f"bench.call_browser: {CHROMIUM} is missing (apt-get install -y chromium)")
    with contextlib.redirect_stdout(io.StringIO()):
        stack = dev.start(port=0, moto_port=0, log=open(os.devnull, "w"))  # noqa: SIM115
    sys.stdout = dev.WithoutMetrics(sys.stdout)  # the handlers' CloudWatch metric lines
    api = stack.url
    print(f"bench.call_browser: storing {SESSIONS:,} sessions ...", flush=True)
    seeds = seed(SEEDED)  # signs with (and sets) the secrets bench-<vendor>
    grow(seeds, SEEDED, SESSIONS)

    long_call = "bench-200-turns"
    send(
        api,
        report(long_call, recording_url=None, turns=TURNS, seconds_apart=9.0, createdAt="2020-01-01T00:00:00.000Z"),
        secret="bench-cozmox",
    )
    audio = hour_wav()
    media, audio_url = serve_bytes(audio)
    hour_call = "bench-60-minutes"
    send(
        api,
        report(hour_call, recording_url=audio_url, turns=20, seconds_apart=180.0, createdAt="2020-01-01T00:01:00.000Z"),
        secret="bench-cozmox",
    )
    import json

    print(f"bench.call_browser: stored; archiving a 60-minute recording ({len(audio) / 1e6:.0f} MB) ...", flush=True)
    deadline = time.monotonic() + 600
    while json.loads(urllib.request.urlopen(f"{api}/sessions/cozmox/{hour_call}").read())["recording"]["state"] != "archived":  # noqa: S310  # nosec B310
        if time.monotonic() > deadline:
            sys.exit("bench.call_browser: the 60-minute recording was not archived")
        time.sleep(0.2)

    with sync_playwright() as playwright:
        browser = launch(playwright)
        list_api = [timed_get(f"{api}/sessions?limit={PAGE}") for _ in range(REPEATS)]
        list_page = [paint_seconds(browser, f"{api}/ui/", f"#calls tbody tr:nth-child({PAGE})") for _ in range(REPEATS)]
        call_api = [timed_get(f"{api}/sessions/cozmox/{long_call}") for _ in range(REPEATS)]
        call_page = [
            paint_seconds(browser, f"{api}/ui/sessions/cozmox/{long_call}", f"li.turn:nth-child({TURNS + 2})")  # + the tool turns
            for _ in range(REPEATS)
        ]

        # Seeking the hour: bytes received from S3 (moto), as Chromium's network layer counts them.
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        moto_host = urlsplit(stack.moto_url).netloc
        media_requests: set[str] = set()
        received: Counter[str] = Counter()
        ranges: list[str] = []

        def on_request(event: dict[str, Any]) -> None:
            if moto_host in event["request"]["url"]:
                media_requests.add(event["requestId"])
                ranges.append(event["request"]["headers"].get("Range", "-"))

        def on_data(event: dict[str, Any]) -> None:
            if event["requestId"] in media_requests:
                received["bytes"] += event["encodedDataLength"] or event["dataLength"]

        cdp.on("Network.requestWillBeSent", on_request)
        cdp.on("Network.dataReceived", on_data)
        page.goto(f"{api}/ui/sessions/cozmox/{hour_call}")
        wait_for(page, "document.getElementById('player') && document.getElementById('player').readyState >= 1")
        loaded = received["bytes"]
        page.evaluate(
            "(() => { const a = document.getElementById('player'); a.muted = true; a.currentTime = a.duration / 2; a.play(); })()"
        )
        wait_for(
            page,
            "(() => { const a = document.getElementById('player'); return !a.seeking && a.readyState >= 3 && a.currentTime >= a.duration / 2; })()",
        )
        time.sleep(0.5)  # what the player buffers once playing at the middle counts too
        page.evaluate("document.getElementById('player').pause()")
        seek_bytes = received["bytes"]
        context.close()

        from axe_playwright_python.sync_playwright import Axe

        findings: dict[str, list[str]] = {}
        page = browser.new_page(viewport=VIEWPORT)
        for label, path in (
            ("list", "/ui/"),
            ("call page", f"/ui/sessions/cozmox/{hour_call}"),
            ("not found", "/ui/sessions/cozmox/none"),
        ):
            page.goto(api + path)
            page.wait_for_selector("#calls, #transcript, h1:text('Call not found')", state="attached")
            violations = Axe().run(page).response["violations"]
            findings[label] = [f"{v['id']} ({v['impact']}, {len(v['nodes'])} nodes)" for v in violations]
        browser.close()
    media.shutdown()

    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    print(f"\nCall browser, {SESSIONS:,} sessions stored (median of {REPEATS}; this machine, moto):")
    print(
        f"  list, first painted page of {PAGE}:   {ms(list_page):7.0f} ms   (API floor GET /sessions?limit={PAGE}: {ms(list_api):.0f} ms; ratio {ms(list_page) / ms(list_api):.2f})"
    )
    print(
        f"  call with a {TURNS}-turn transcript: {ms(call_page):7.0f} ms   (API floor GET of that session: {ms(call_api):.0f} ms; ratio {ms(call_page) / ms(call_api):.2f})"
    )
    print(
        f"  60-minute recording ({len(audio) / 1e6:.1f} MB WAV): {loaded / 1e3:.0f} kB to load its metadata, {seek_bytes / 1e6:.2f} MB in all to seek to its middle and play"
    )
    print(
        f"    = {seek_bytes / len(audio):.1%} of the file (floor without Range: 100%); {len(ranges)} requests to S3, ranges {', '.join(ranges[:6])}"
    )
    for label, found in findings.items():
        print(f"  accessibility scan, {label}: {len(found)} findings{': ' + '; '.join(found) if found else ''}")
    stack.shutdown()


if __name__ == "__main__":
    main()
