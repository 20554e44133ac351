"""A long ElevenLabs call's audio, pulled from its API by the recording copier (DESIGN.md "Long
calls' audio"): a 60-minute call at 128 kbit/s (57.6 MB of MP3) from a loopback fake of the API
(`callvault fake-api --vendor elevenlabs`, streamed, the key checked) into S3 (a moto endpoint),
against a plain read of the same audio to /dev/null in the same run.

    make bench      (or: uv run python -m bench.elevenlabs_long_call)

Each measurement runs in a fresh process so its peak RSS is its own (moto and the fake API run in
this parent process, as S3 and ElevenLabs would be elsewhere). Also counted: the API requests
made per archived recording, from the fake API's own count.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/callvault"), str(ROOT / "src")]

from bench import _stack  # noqa: E402 - after the path is set

MINUTES = 60
KEY = "bench-xi-key"
CONVERSATION = "conv-60-minutes"


def _child(mode: str) -> None:
    """In a fresh process: read the API's audio to /dev/null, or copy it as the recording function does."""
    import time

    sys.modules["awscrt"] = None  # type: ignore[assignment]  # as in Lambda (see bench.recordings)

    from callvault.vendors import elevenlabs

    url = elevenlabs.audio_url(CONVERSATION)
    start = time.perf_counter()
    total = 0
    if mode == "read":  # the floor: the same request, the bytes thrown away
        from callvault.download import open_url

        opened = open_url(url, deadline=time.monotonic() + 600, allow_loopback=True, headers={"xi-api-key": KEY})
        with open(os.devnull, "wb") as sink:
            while chunk := opened.read_some(1024 * 1024):
                sink.write(chunk)
                total += len(chunk)
        opened.close()
    elif mode == "baseline":  # what the copier's process holds before any byte moves
        from callvault import aws, recordings

        aws.s3(), aws.dynamodb()
    else:
        import boto3
        import urllib3  # noqa: F401 - imported before the clock starts: throughput, not cold start

        from callvault import aws, recordings, store
        from callvault.models import RecordingState

        aws.s3(), aws.dynamodb()
        key = {"pk": {"S": store.session_pk("elevenlabs", CONVERSATION)}, "sk": {"S": store.SESSION_SK}}
        item = {"vendor": {"S": "elevenlabs"}, "session_id": {"S": CONVERSATION}, "recording_source_url": {"S": url}}
        pending = {"recording_state": {"S": RecordingState.PENDING.value}}
        boto3.client("dynamodb").put_item(TableName="callvault-sessions", Item=key | item | pending)
        start = time.perf_counter()
        outcome = recordings.copy_recording(recordings.RecordingJob("elevenlabs", CONVERSATION, url, None))
        assert outcome == "archived", outcome
        stored = boto3.client("dynamodb").get_item(TableName="callvault-sessions", Key=key)["Item"]
        assert stored["recording_content_type"]["S"] == "audio/mpeg"
        total = int(stored["recording_bytes"]["N"])
    _stack.report(total, time.perf_counter() - start)


def main() -> None:
    from datetime import UTC, datetime, timedelta

    from callvault_local.fake_vendor_apis import MP3_BYTES_PER_SECOND, FakeVendorApi

    def run(mode: str) -> dict[str, float]:
        return _stack.run_child("bench.elevenlabs_long_call", mode, env=env)

    size = MINUTES * 60 * MP3_BYTES_PER_SECOND
    with _stack.moto_stack():
        api = FakeVendorApi("elevenlabs", key=KEY, audio_bytes=size)
        api.start()
        api.add(CONVERSATION, datetime.now(UTC) - timedelta(hours=1))
        env = _stack.child_env(CALLVAULT_API_URL_ELEVENLABS=api.url, CALLVAULT_API_KEY_ELEVENLABS=KEY)
        try:
            run("read")  # warm the OS caches
            read = run("read")
            before = api.requests["recording"]
            copy = run("copy")
            requests = api.requests["recording"] - before
            baseline = run("baseline")
        finally:
            api.stop()
    mb = size / 1e6
    read_rate, copy_rate = read["bytes"] / read["seconds"] / 1e6, copy["bytes"] / copy["seconds"] / 1e6
    print(f"== A {MINUTES}-minute ElevenLabs call's audio ({mb:.1f} MB MP3, 128 kbit/s) from a loopback fake API into S3 (moto)")
    print(f"plain read to /dev/null   {read['seconds']:7.2f} s  {read_rate:7.1f} MB/s  peak RSS {read['peak_rss_mb']:6.1f} MB")
    print(f"copier, API -> S3         {copy['seconds']:7.2f} s  {copy_rate:7.1f} MB/s  peak RSS {copy['peak_rss_mb']:6.1f} MB")
    print(f"copy / read throughput    {copy_rate / read_rate:7.2f}x  (moto's intake is the ceiling here: see bench.recordings)")
    extra = copy["peak_rss_mb"] - baseline["peak_rss_mb"]
    print(f"  peak RSS of the copy    {extra:7.1f} MB  over {baseline['peak_rss_mb']:.1f} MB of boto3, clients and code")
    print(f"API requests per archived recording: {requests} (GET .../{{id}}/audio with xi-api-key)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2])
    else:
        main()
