"""The local stack as a user runs it (`callvault dev` in its own process), shared by the e2e tests."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from callvault_local.stack import LOCAL_BUCKET, LOCAL_TABLE

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    url: str
    moto_url: str
    banner: str
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    reader: threading.Thread | None = None  # moves the process's output into `lines`

    def output_after_exit(self, within: float = 30) -> list[str]:
        """The lines not read yet, once the process has exited and its output is all read."""
        self.process.wait(timeout=within)
        if self.reader is not None:
            self.reader.join(timeout=within)  # ends at the end of the output
            assert not self.reader.is_alive(), "the output did not end"
        return [self.lines.get_nowait() for _ in range(self.lines.qsize())]

    def client(self, service: Any) -> Any:
        return boto3.client(
            service, endpoint_url=self.moto_url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )

    def raw_keys(self) -> list[str]:
        pages = self.client("s3").get_paginator("list_objects_v2").paginate(Bucket=LOCAL_BUCKET)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def items(self) -> list[dict[str, Any]]:
        pages = self.client("dynamodb").get_paginator("scan").paginate(TableName=LOCAL_TABLE)  # tests only
        return [item for page in pages for item in page["Items"]]

    def request_lines(self, count: int, timeout: float = 10) -> list[str]:
        """The next `count` request log lines (the recording copier's own lines and its fetches of
        the sample audio, which come when they come, skipped)."""
        found: list[str] = []
        while len(found) < count:
            line = self.lines.get(timeout=timeout)
            if not line.startswith(("RecordingsArchiveFunction:", "GET /local/sample-audio/")):
                found.append(line)
        return found

    def wait_for_line(self, wanted: Callable[[str], bool], timeout: float = 60) -> str:
        """The first log line from now on that is `wanted` (the others read and dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if wanted(line):
                return line

    def drain_log(self) -> None:
        while not self.lines.empty():
            self.lines.get_nowait()


def dev_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLVAULT_SECRET_")}
    env.update(PYTHONUNBUFFERED="1", CALLVAULT_SECRET_SPEAKNODE="rotated-speaknode-secret,dev-speaknode-secret")
    return env


@contextlib.contextmanager
def started_stack(command: list[str] | None = None, *, new_session: bool = False) -> Iterator[RunningStack]:
    """`callvault dev` on free ports (or `command`, e.g. `make dev PORT=0 MOTO_PORT=0`), until its
    banner is out; `new_session`: in a process group of its own, to signal as a terminal does."""
    process = subprocess.Popen(
        command or [sys.executable, "-m", "callvault_local.cli", "dev", "--port", "0", "--moto-port", "0"],
        cwd=ROOT,
        env=dev_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=new_session,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout
        for line in process.stdout:
            lines.put(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    banner: list[str] = []
    deadline = time.monotonic() + STARTUP_SECONDS
    while not banner or banner[-1] != "Ctrl-C stops.":
        try:
            banner.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            process.kill()
            pytest.fail("callvault dev did not start:\n" + "\n".join(banner))
    text = "\n".join(banner)
    url = re.search(r"(http://127\.0\.0\.1:\d+)/webhooks/", text)
    moto = re.search(r"moto endpoint: (http://127\.0\.0\.1:\d+)", text)
    assert url and moto, text
    try:
        yield RunningStack(process, url.group(1), moto.group(1), text, lines, reader)
    finally:
        if process.poll() is None:
            if new_session:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
            process.wait()


@pytest.fixture(scope="module")
def dev_stack() -> Iterator[RunningStack]:
    with started_stack() as running:
        yield running
