"""What the recording benches share: the stack in a moto endpoint of this process, and each
measurement in a fresh process of its own (so its peak RSS is its own), reporting one JSON line."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def moto_stack() -> Iterator[None]:
    """The stack's table and bucket in moto on a free loopback port, this process's environment
    (the children's too) pointed at it, the network refused but loopback; moto stopped after."""
    import boto3

    from callvault_local import dev, stack
    from callvault_local.offline import isolate

    isolate("bench")
    moto_server, moto_port = dev.start_moto(0)
    stack.configure_environment(moto_port)
    os.environ.update(RECORDING_TIMEOUT_SECONDS="600", POWERTOOLS_METRICS_DISABLED="true")
    stack.create(boto3.Session())
    try:
        yield
    finally:
        moto_server.shutdown()


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment, with its import path, for a child measurement."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path[:3]), **extra}


def run_child(module: str, *args: str, env: dict[str, str]) -> dict[str, float]:
    """`python -m module --child *args` in a fresh process; the JSON its last line prints."""
    out = subprocess.run(  # noqa: S603 - a bench module of this repository
        [sys.executable, "-m", module, "--child", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def report(total: int, seconds: float) -> None:
    """A child's result line: the bytes it moved, in how long, and its own peak RSS."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    status = Path("/proc/self/status").read_text()
    peak_mb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024
    print(json.dumps({"bytes": total, "seconds": seconds, "peak_rss_mb": peak_mb}))
