"""The read API answers byte for byte what it answered before the write stopped normalizing
transcripts (issue 23): every sample payload, alone and with its vendor's others in either order,
stored through the real webhook handlers and read back through the real read routes, against
golden files made from the code before that change (tests/fixtures/read-golden/).

    CALLVAULT_WRITE_GOLDEN=1 pytest tests/integration/test_read_unchanged.py   (regenerates them)

Only what differs from run to run is masked: the times of this run (when an event was received)
and the day in an archive key.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callvault_local.dev import LocalApi
from tests.conftest import PAYLOADS, ROOT, Stored, payload_path, post_webhook

GOLDEN = ROOT / "tests" / "fixtures" / "read-golden"
API = LocalApi()
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_DAY_PATH = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/")


def webhook_of(vendor: str, name: str) -> str:
    """The route a sample payload is sent to."""
    if vendor == "speaknode":  # one route per event: a sample is named after its route
        return name if name == "session-started" else "conversation-complete"
    return {
        "agentsessions": "session-completed",
        "cozmox": "server-messages",
        "vapi": "server-messages",
        "voiceos": "events",
        "retell": "events",
        "elevenlabs": "post-call",
    }[vendor]


def _samples() -> list[tuple[str, str]]:
    """(vendor, payload name) of every sample payload and every vendor documentation example."""
    found = [(path.parent.name, f"{path.parent.name}/{path.stem}") for path in sorted(PAYLOADS.glob("*/*.json"))]
    examples = sorted((ROOT / "tests" / "fixtures" / "doc-examples").glob("*.json"))
    return found + [(path.stem, f"doc-examples/{path.stem}") for path in examples]


SAMPLES = _samples()
VENDORS = sorted({vendor for vendor, name in SAMPLES if not name.startswith("doc-examples/")})


def _masked(text: str, started: datetime) -> str:
    """`text` with this run's times and days replaced by placeholders."""
    window = (started - timedelta(minutes=5), datetime.now(UTC) + timedelta(minutes=5))

    def time_of_run(match: re.Match[str]) -> str:
        moment = datetime.fromisoformat(match.group().replace("Z", "+00:00"))
        return "<time of run>" if window[0] <= moment <= window[1] else match.group()

    days = {moment.strftime("/%Y/%m/%d/") for moment in window}
    return _DAY_PATH.sub(lambda m: "/<day of run>/" if m.group() in days else m.group(), _TIME.sub(time_of_run, text))


def _get(path: str) -> str:
    reply = API.handle("GET", path, {}, b"", "127.0.0.1")
    body = reply.body.decode() if isinstance(reply.body, bytes) else str(reply.body)
    return f"{reply.status} {body}"


def _read_back(sent: list[tuple[str, str]]) -> str:
    """Post each (vendor, payload name) in order; what the read API then answers for every session
    they named, and for the vendor's listing."""
    started = datetime.now(UTC)
    lines, sessions = [], []
    for vendor, name in sent:
        reply = post_webhook(vendor, webhook_of(vendor, name.split("/")[-1]), payload_path(name).read_bytes())
        lines.append(f"POST {name}: {reply.status} {json.dumps(reply.json, sort_keys=True)}")
        session_id = reply.json.get("session_id")
        if session_id and (vendor, session_id) not in sessions:
            sessions.append((vendor, session_id))
    for vendor, session_id in sessions:
        path = f"/sessions/{vendor}/{session_id}"
        lines.append(f"GET {path}: {_get(path)}")
    for vendor in sorted({vendor for vendor, _ in sent}):
        lines.append(f"GET /sessions?vendor={vendor}: {_get(f'/sessions?vendor={vendor}')}")
    return _masked("\n".join(lines) + "\n", started)


def _check(golden: Path, answered: str) -> None:
    if os.environ.get("CALLVAULT_WRITE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(answered)
    assert golden.exists(), f"no golden file {golden.relative_to(ROOT)}: CALLVAULT_WRITE_GOLDEN=1 makes it"
    assert answered == golden.read_text()


@pytest.mark.parametrize(("vendor", "name"), SAMPLES, ids=[name for _, name in SAMPLES])
def test_each_sample_reads_back_as_before(stored: Stored, vendor: str, name: str) -> None:
    _check(GOLDEN / f"{name}.txt", _read_back([(vendor, name)]))


@pytest.mark.parametrize("order", ["forward", "reversed"])
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_vendors_samples_together_read_back_as_before(stored: Stored, vendor: str, order: str) -> None:
    # One call's events merged, in either order: the longest transcript kept, the status forward.
    sent = [(v, name) for v, name in SAMPLES if v == vendor and not name.startswith("doc-examples/")]
    _check(GOLDEN / "together" / f"{vendor}-{order}.txt", _read_back(sent if order == "forward" else sent[::-1]))


def test_a_long_report_reads_back_as_before(stored: Stored) -> None:
    # Hundreds of turns, tool calls among them, as on a long call.
    body = json.loads(payload_path("cozmox/end-of-call-report").read_bytes())
    body["message"]["artifact"]["messages"] *= 50
    started = datetime.now(UTC)
    reply = post_webhook("cozmox", "server-messages", body)
    answered = _get(f"/sessions/cozmox/{reply.json['session_id']}")
    _check(GOLDEN / "together" / "cozmox-long-report.txt", _masked(answered + "\n", started))
