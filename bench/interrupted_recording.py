"""A recording copy cut short by the invocation's time, then archived (issue 18, defect 3): how
many attempts and how long from the first delivery to the archived recording.

    make bench        (or: uv run python -m bench.interrupted_recording [--invocation-seconds 20])

On moto in-process, the recording function run by the local stream runner (the template's
filters, retries with a 1 s backoff doubling, as `make dev` does but slower) with its timeout set
to --invocation-seconds (the template's is 300 s). The host's first answer would take hours (a
kilobyte every half second); later answers come at once. The floor, in the same run: the same
copy from a host that answers at once the first time.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/callvault"), str(ROOT / "src")]

from callvault_local.offline import isolate  # noqa: E402

isolate(
    "bench",
    POWERTOOLS_LOG_LEVEL="WARNING",
    CALLVAULT_SECRET_SPEAKNODE="bench-secret",
    RECORDING_ALLOW_LOOPBACK="true",
    RECORDING_TIMEOUT_SECONDS="240",  # the template's
)

AUDIO = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\0" * 256 * 1024


def serve(closing: threading.Event) -> tuple[ThreadingHTTPServer, str, Counter[str]]:
    """`/trickle.wav`: the first answer a kilobyte every half second (hours for the whole file),
    later ones at once; `/quick.wav`: at once."""
    hits: Counter[str] = Counter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            hits[path] += 1
            self.send_response(200)
            self.send_header("content-type", "audio/wav")
            self.send_header("content-length", str(len(AUDIO) * (1000 if path == "/trickle.wav" and hits[path] == 1 else 1)))
            self.end_headers()
            if path == "/trickle.wav" and hits[path] == 1:
                with contextlib.suppress(OSError):
                    while not closing.wait(0.5):
                        self.wfile.write(AUDIO[:1000])
                        self.wfile.flush()
                return
            self.wfile.write(AUDIO)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", hits


def copy(url: str, session_id: str, invocation_seconds: float) -> dict[str, Any]:
    """Deliver one session with a recording at `url` and run the copier until the stream is done."""
    from callvault import store
    from callvault_local.apigw import LambdaContext, http_event
    from callvault_local.functions import load_handler
    from callvault_local.streams import deliveries

    body = json.loads((ROOT / "events/payloads/speaknode/conversation-complete.json").read_text())
    body["data"].update(session_id=session_id, audio_url=url, audio_url_expires_at="2099-01-01T00:00:00Z")
    handler = load_handler(ROOT / "functions/speaknode_conversation_complete", "app.lambda_handler", "Speaknode")
    headers = {"content-type": "application/json", "authorization": "Bearer bench-secret"}
    path = "/webhooks/speaknode/conversation-complete"
    assert handler(http_event("POST", path, json.dumps(body).encode(), headers), LambdaContext())["statusCode"] == 200
    from callvault.config import settings

    (delivery,) = deliveries(settings().table_name, backoff_seconds=1.0, log=lambda _: None)
    delivery.function = dataclasses.replace(delivery.function, timeout_seconds=invocation_seconds)
    started = time.monotonic()
    delivery.poll()
    seconds = time.monotonic() - started
    (item,) = [i for i in store.session_items("speaknode", session_id, consistent=True) if i["sk"]["S"] == store.SESSION_SK]
    return {"state": item["recording_state"]["S"], "attempts": int(item["recording_attempts"]["N"]), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invocation-seconds", type=float, default=20.0)
    args = parser.parse_args()

    import boto3
    from moto import mock_aws

    from callvault import aws
    from callvault_local import moto_patches, stack

    moto_patches.apply()
    closing = threading.Event()
    server, url, hits = serve(closing)
    with mock_aws(), contextlib.redirect_stdout(io.StringIO()):
        aws.reset()
        stack.create(boto3.Session())
        floor = copy(f"{url}/quick.wav", "bench-quick", args.invocation_seconds)
        cut = copy(f"{url}/trickle.wav", "bench-cut", args.invocation_seconds)
        aws.reset()
    closing.set()
    server.shutdown()
    print(f"== A recording copy cut short by the invocation's time ({args.invocation_seconds:g} s), then archived")
    print(
        f"interrupted  {cut['state']} after {cut['attempts']} attempts ({hits['/trickle.wav']} fetches), {cut['seconds']:.1f} s"
    )
    print(
        f"floor        {floor['state']} after {floor['attempts']} attempt, {floor['seconds']:.1f} s (a host that answers at once)"
    )
    print(
        f"ratio        {cut['seconds'] / args.invocation_seconds:.2f}x the invocation's time"
        f" (the first copy stops {min(30, args.invocation_seconds / 10):g} s before it ends; then the retry's backoff)"
    )


if __name__ == "__main__":
    main()
