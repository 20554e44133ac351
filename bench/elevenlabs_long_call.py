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

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/callvault"), str(ROOT / "src")]

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
    elapsed = time.perf_counter() - start
    status = Path("/proc/self/status").read_text()  # VmHWM: this process's own peak
    peak_mb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024
    print(json.dumps({"bytes": total, "seconds": elapsed, "peak_rss_mb": peak_mb}))


def _run(mode: str, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(  # noqa: S603 - this very file
        [sys.executable, "-m", "bench.elevenlabs_long_call", "--child", mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    from datetime import UTC, datetime, timedelta

    import boto3

    from callvault_local import dev, stack
    from callvault_local.fake_vendor_apis import MP3_BYTES_PER_SECOND, FakeVendorApi
    from callvault_local.offline import isolate

    isolate("bench")
    moto_server, moto_port = dev.start_moto(0)
    stack.configure_environment(moto_port)
    os.environ.update(RECORDING_TIMEOUT_SECONDS="600", POWERTOOLS_METRICS_DISABLED="true")
    stack.create(boto3.Session())
    size = MINUTES * 60 * MP3_BYTES_PER_SECOND
    api = FakeVendorApi("elevenlabs", key=KEY, audio_bytes=size)
    api.start()
    api.add(CONVERSATION, datetime.now(UTC) - timedelta(hours=1))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path[:3]),
        "CALLVAULT_API_URL_ELEVENLABS": api.url,
        "CALLVAULT_API_KEY_ELEVENLABS": KEY,
    }
    try:
        _run("read", env)  # warm the OS caches
        read = _run("read", env)
        before = api.requests["recording"]
        copy = _run("copy", env)
        requests = api.requests["recording"] - before
        baseline = _run("baseline", env)
    finally:
        api.stop()
        moto_server.shutdown()
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
