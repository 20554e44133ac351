"""Recordings benchmark: copying a 200 MB recording from a loopback server into S3 (moto),
against a plain read of the same stream to /dev/null, in the same run.

    make bench      (or: uv run python -m bench.recordings)

Each measurement runs in a fresh process so its peak RSS is its own. moto runs as an endpoint
in this (parent) process, as S3 would be elsewhere: its memory is not the copier's.
Goal (issue 5): peak RSS under 100 MB, throughput at least half of the plain read.

Also measured, to read the throughput against: what moto itself takes when parts are sent with
no client work at all (raw UploadPart requests, nothing signed or hashed). On this 2-core
machine that is about 0.1x of the plain read, so no copy into moto can reach 0.5x here.
The child processes hide awscrt, as the Lambda runtime's boto3 has none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/callvault"), str(ROOT / "src")]

SIZE = 200 * 1024 * 1024
CHUNK = 1024 * 1024
WAV_HEADER = b"RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80>\x00\x00\x02\x00\x10\x00data"


def serve_audio() -> tuple[ThreadingHTTPServer, str]:
    """A loopback media host: /call.wav is SIZE bytes of WAV, /small.wav a quarter of it,
    generated as they are sent."""
    block = bytes(range(256)) * (CHUNK // 256)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            size = SIZE // 4 if self.path == "/small.wav" else SIZE
            self.send_response(200)
            self.send_header("content-type", "audio/wav")
            self.send_header("content-length", str(size))
            self.end_headers()
            sent = len(WAV_HEADER)
            self.wfile.write(WAV_HEADER)
            while sent < size:
                part = block[: min(CHUNK, size - sent)]
                self.wfile.write(part)
                sent += len(part)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/call.wav"


def _moto_intake() -> Callable[[], int]:
    """Prepared: upload SIZE bytes as 5 MiB parts over two raw HTTP connections, as fast as moto
    takes them (moto checks no signature): the most any client could copy into this sink.
    Returns the upload to run, which returns the bytes sent."""
    import http.client
    from urllib.parse import urlsplit

    import boto3

    from callvault.archive import UPLOAD_PART_BYTES
    from callvault.config import settings

    bucket, endpoint = settings().bucket_name, urlsplit(os.environ["AWS_ENDPOINT_URL"])
    upload_id = boto3.client("s3").create_multipart_upload(Bucket=bucket, Key="audio/bench/intake")["UploadId"]
    part = bytes(UPLOAD_PART_BYTES)
    part_count = SIZE // UPLOAD_PART_BYTES
    numbers = list(range(1, part_count + 1))
    lock = threading.Lock()

    def send_parts() -> None:
        connection = http.client.HTTPConnection(endpoint.hostname or "127.0.0.1", endpoint.port)
        auth = "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"
        while True:
            with lock:
                if not numbers:
                    return
                number = numbers.pop()
            path = f"/{bucket}/audio/bench/intake?partNumber={number}&uploadId={upload_id}"
            connection.request("PUT", path, body=part, headers={"authorization": auth})
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status

    def upload() -> int:
        senders = [threading.Thread(target=send_parts) for _ in range(2)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        return len(part) * part_count

    return upload


def _child(mode: str, url: str) -> None:
    """In a fresh process: read the stream to /dev/null, or copy it as the recording function does."""
    import time

    # As in Lambda: the python3.13 runtime's boto3 comes without the AWS CRT (awscrt), which the
    # dev tools pull in here. With it, botocore would sign and checksum through it (6 MB more).
    sys.modules["awscrt"] = None  # type: ignore[assignment]

    from callvault.download import open_url

    start = time.perf_counter()
    if mode == "intake":  # the sink alone, no client at all: raw UploadPart requests, nothing hashed or signed
        upload = _moto_intake()
        start = time.perf_counter()
        total = upload()
    elif mode == "baseline":  # what the copier's process holds before any byte moves
        from callvault import aws, recordings

        aws.s3(), aws.dynamodb()
        total = 0
    elif mode == "upload":  # the sink alone: the same bytes from memory, the same multipart settings
        import io

        from callvault import archive

        data = WAV_HEADER + bytes(SIZE - len(WAV_HEADER))
        start = time.perf_counter()
        archive.upload_stream("audio/bench/sink-only.wav", io.BytesIO(data), "audio/wav")
        total = len(data)
    elif mode == "read":
        opened = open_url(url, deadline=time.monotonic() + 600, allow_loopback=True)
        total = 0
        with open(os.devnull, "wb") as sink:
            while chunk := opened.read_some(CHUNK):
                sink.write(chunk)
                total += len(chunk)
        opened.close()
    else:
        import boto3
        import urllib3  # noqa: F401 - imported before the clock starts: throughput, not cold start

        from callvault import aws, recordings, store
        from callvault.models import RecordingState

        aws.s3(), aws.dynamodb()

        boto3.client("dynamodb").put_item(
            TableName="callvault-sessions",
            Item={
                "pk": {"S": store.session_pk("speaknode", "bench")},
                "sk": {"S": store.SESSION_SK},
                "vendor": {"S": "speaknode"},
                "session_id": {"S": "bench"},
                "recording_source_url": {"S": url},
                "recording_state": {"S": RecordingState.PENDING.value},
            },
        )
        start = time.perf_counter()
        outcome = recordings.copy_recording(recordings.RecordingJob("speaknode", "bench", url, None))
        assert outcome == "archived", outcome
        item = boto3.client("dynamodb").get_item(
            TableName="callvault-sessions", Key={"pk": {"S": store.session_pk("speaknode", "bench")}, "sk": {"S": "SESSION"}}
        )["Item"]
        total = int(item["recording_bytes"]["N"])
    elapsed = time.perf_counter() - start
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    status = Path("/proc/self/status").read_text()
    peak_mb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024
    print(json.dumps({"bytes": total, "seconds": elapsed, "peak_rss_mb": peak_mb}))


def _run(mode: str, url: str, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(  # noqa: S603 - this very file
        [sys.executable, "-m", "bench.recordings", "--child", mode, url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    import boto3

    from callvault_local import dev, stack
    from callvault_local.offline import isolate

    isolate("bench")
    moto_server, moto_port = dev.start_moto(0)
    stack.configure_environment(moto_port)
    os.environ.update(RECORDING_TIMEOUT_SECONDS="600", POWERTOOLS_METRICS_DISABLED="true")
    stack.create(boto3.Session())
    server, url = serve_audio()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path[:3])}
    try:
        _run("read", url, env)  # warm the OS caches
        read = _run("read", url, env)
        copy = _run("copy", url, env)
        upload = _run("upload", url, env)
        intake = _run("intake", url, env)
        baseline = _run("baseline", url, env)
        small = _run("copy", url.replace("/call.wav", "/small.wav"), env)
    finally:
        server.shutdown()
        moto_server.shutdown()
    mb = SIZE / 1024 / 1024
    read_rate, copy_rate = read["bytes"] / read["seconds"] / 2**20, copy["bytes"] / copy["seconds"] / 2**20
    print(f"== Copying a {mb:.0f} MB recording from a loopback server into S3 (moto endpoint), fresh process each")
    print(f"plain read to /dev/null  {read_rate:8.1f} MB/s  peak RSS {read['peak_rss_mb']:6.1f} MB")
    print(f"copy into S3             {copy_rate:8.1f} MB/s  peak RSS {copy['peak_rss_mb']:6.1f} MB")
    upload_rate = upload["bytes"] / upload["seconds"] / 2**20
    print(f"upload alone (from RAM)  {upload_rate:8.1f} MB/s  (the sink's own ceiling: moto, not S3)")
    intake_rate = intake["bytes"] / intake["seconds"] / 2**20
    print(f"moto intake (raw HTTP)   {intake_rate:8.1f} MB/s  (parts sent with no client work at all: the sink's limit)")
    print(f"copy / read throughput   {copy_rate / read_rate:8.2f}x   (goal >= 0.5x)")
    print(f"moto intake / read       {intake_rate / read_rate:8.2f}x   (the most any copy into moto can reach here)")
    print(f"copy / moto intake       {copy_rate / intake_rate:8.2f}x")
    print(f"copy / upload alone      {copy_rate / upload_rate:8.2f}x   (what the download, hashing and capping cost)")
    print(f"copy peak RSS            {copy['peak_rss_mb']:8.1f} MB  (goal < 100 MB; whatever the file size)")
    extra = copy["peak_rss_mb"] - baseline["peak_rss_mb"]
    print(f"  of which the copy      {extra:8.1f} MB  over {baseline['peak_rss_mb']:.1f} MB of boto3, clients and code")
    small_mb = small["bytes"] / 2**20
    print(
        f"copy of {small_mb:.0f} MB, peak RSS {small['peak_rss_mb']:8.1f} MB  (flat: {copy['peak_rss_mb'] - small['peak_rss_mb']:+.1f} MB for 4x the bytes)"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], sys.argv[3])
    else:
        main()
