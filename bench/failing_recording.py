"""A recording whose host always answers 503, on `callvault dev` as a user runs it (issue 10):
how many fetches it gets, and how long Ctrl-C takes while it is being retried.

    uv run python -m bench.failing_recording [--seconds 60] [--make]

Starts `callvault dev` (or, with --make, `make dev`) in a process group of its own on free-ish
random ports, sends one speaknode conversation-complete whose audio_url is a loopback host
answering 503 to every GET, and counts the GETs for --seconds. Then, for a second stack with
the same recording, sends SIGINT to the group (a terminal's Ctrl-C) 1.5 s after its second
fetch (inside urllib3's backoff) and measures until every process of the group is gone; the
floor is the same measurement on an idle stack, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class FailingHost:
    """A media host answering 503 to every GET, counting them."""

    def __init__(self) -> None:
        self.fetches: list[float] = []
        fetches = self.fetches

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fetches.append(time.monotonic())
                self.send_response(503)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/call.wav"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def start_stack(use_make: bool) -> tuple[subprocess.Popen[str], int]:
    port, moto_port = random.randint(31000, 39000), random.randint(51000, 59000)
    command = (
        ["make", "--no-print-directory", "dev", f"PORT={port}", f"MOTO_PORT={moto_port}"]
        if use_make
        else [sys.executable, "-m", "callvault_local.cli", "dev", "--port", str(port), "--moto-port", str(moto_port)]
    )
    process = subprocess.Popen(  # noqa: S603 - our own commands
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in process.stdout or []:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    while lines.get(timeout=120).strip() != "Ctrl-C stops.":
        pass
    return process, port


def send_recording(port: int, url: str) -> None:
    body = json.loads((ROOT / "events/payloads/speaknode/conversation-complete.json").read_text())
    body["data"].update(session_id=f"bench-failing-{port}", audio_url=url)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as payload:
        json.dump(body, payload)
    command = [sys.executable, "-m", "callvault_local.cli", "send", payload.name, "--vendor", "speaknode"]
    subprocess.run(  # noqa: S603 - our own command
        [*command, "--webhook", "conversation-complete", "--port", str(port)], cwd=ROOT, check=True, capture_output=True
    )
    os.unlink(payload.name)


def interrupt(process: subprocess.Popen[str]) -> float:
    """Seconds from SIGINT to the group until no process of it is left (60 s at most)."""
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    while time.monotonic() - started < 60:
        process.poll()
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return time.monotonic() - started
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    return float("inf")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--make", action="store_true", help="run `make dev` instead of `callvault dev`")
    args = parser.parse_args()

    host = FailingHost()
    process, port = start_stack(args.make)
    send_recording(port, host.url)
    time.sleep(args.seconds)  # the observation window itself
    counted = len(host.fetches)
    interrupt(process)
    print(f"fetches of an always-503 recording in {args.seconds:.0f} s: {counted}")

    idle, port = start_stack(args.make)
    floor = interrupt(idle)
    host = FailingHost()
    process, port = start_stack(args.make)
    send_recording(port, host.url)
    while len(host.fetches) < 2:
        time.sleep(0.05)
    time.sleep(1.5)  # into urllib3's backoff before the third fetch
    retrying = interrupt(process)
    print(f"Ctrl-C to every process gone: {retrying:.2f} s while a recording retries; idle stack {floor:.2f} s")


if __name__ == "__main__":
    main()
