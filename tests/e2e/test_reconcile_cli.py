"""`callvault reconcile` as a user runs it: against a running `callvault dev`, pointed at a fake
vendor API on loopback by CALLVAULT_API_URL_<VENDOR>."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from callvault_local.fake_vendor_apis import FakeVendorApi
from tests.e2e.conftest import ROOT, RunningStack, started_stack


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    with started_stack() as running:
        yield running


def reconcile_cli(stack: RunningStack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    moto_port = str(urlsplit(stack.moto_url).port)
    return subprocess.run(
        [sys.executable, "-m", "callvault_local.cli", "reconcile", *args],
        cwd=ROOT,
        env={**os.environ, "MOTO_PORT": moto_port, "API_BACKOFF_SECONDS": "0.01", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_pass_then_a_second_pass_then_a_wrong_key(stack: RunningStack) -> None:
    with FakeVendorApi("voiceos", key="k-1") as api:
        api.populate(7, start=datetime.now(UTC) - timedelta(minutes=30), spacing=timedelta(minutes=1))
        env = {"CALLVAULT_API_URL_VOICEOS": api.url, "CALLVAULT_API_KEY_VOICEOS": "k-1"}
        first = reconcile_cli(stack, "--vendor", "voiceos", **env)
        assert first.returncode == 0, first.stderr
        assert first.stdout.splitlines()[-1] == "reconcile voiceos: listed 7, stored 7, duplicate 0, failed 0"
        second = reconcile_cli(stack, "--vendor", "voiceos", **env)
        assert second.stdout.splitlines()[-1] == "reconcile voiceos: listed 7, stored 0, duplicate 7, failed 0"
        sessions = [i for i in stack.items() if i["sk"]["S"] == "SESSION" and i["vendor"]["S"] == "voiceos"]
        assert len(sessions) == 7

        wrong = reconcile_cli(
            stack, "--vendor", "voiceos", "--since", "2020-01-01T00:00:00Z", **env | {"CALLVAULT_API_KEY_VOICEOS": "nope"}
        )
        assert wrong.returncode == 1
        assert wrong.stdout.splitlines()[-1] == "reconcile voiceos: listed 0, stored 0, duplicate 0, failed 0"
        assert wrong.stderr.strip().splitlines() == [
            "callvault reconcile: the voiceos API refused the key (GET /conversations: HTTP 401)"
        ]
        assert "Traceback" not in wrong.stderr + wrong.stdout


@pytest.mark.parametrize("vendor", ["vapi", "retell", "elevenlabs"])
def test_each_new_pull_vendor_from_its_api_url(stack: RunningStack, vendor: str) -> None:
    upper = vendor.upper()
    with FakeVendorApi(vendor, key="k-2") as api:
        api.populate(5, start=datetime.now(UTC) - timedelta(minutes=30), spacing=timedelta(minutes=1))
        env = {f"CALLVAULT_API_URL_{upper}": api.url, f"CALLVAULT_API_KEY_{upper}": "k-2"}
        first = reconcile_cli(stack, "--vendor", vendor, **env)
        assert first.returncode == 0, first.stderr
        assert first.stdout.splitlines()[-1] == f"reconcile {vendor}: listed 5, stored 5, duplicate 0, failed 0"
        second = reconcile_cli(stack, "--vendor", vendor, **env)
        assert second.stdout.splitlines()[-1] == f"reconcile {vendor}: listed 5, stored 0, duplicate 5, failed 0"
        sessions = [i for i in stack.items() if i["sk"]["S"] == "SESSION" and i["vendor"]["S"] == vendor]
        assert len(sessions) == 5

        wrong = reconcile_cli(stack, "--vendor", vendor, **env | {f"CALLVAULT_API_KEY_{upper}": "nope"})
        assert wrong.returncode == 1 and "Traceback" not in wrong.stderr + wrong.stdout
        (line,) = wrong.stderr.strip().splitlines()
        assert line.startswith(f"callvault reconcile: the {vendor} API refused the key (") and "HTTP 401" in line
        assert wrong.stdout.splitlines()[-1] == f"reconcile {vendor}: listed 0, stored 0, duplicate 0, failed 0"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--vendor", "speaknode"], {}, "speaknode has no API that lists calls"),
        (["--vendor", "nobody"], {}, "unknown vendor 'nobody'"),
        (["--vendor", "voiceos", "--since", "yesterday"], {"CALLVAULT_API_KEY_VOICEOS": "k"}, "is not an ISO 8601 time"),
        (["--vendor", "voiceos"], {"CALLVAULT_API_KEY_VOICEOS": ""}, "set CALLVAULT_API_KEY_VOICEOS"),
        (["--vendor", "cozmox"], {"CALLVAULT_API_KEY_COZMOX": "k", "CALLVAULT_API_URL_COZMOX": ""}, "CALLVAULT_API_URL_COZMOX"),
    ],
)
def test_user_mistakes_are_one_clear_line(stack: RunningStack, args: list[str], env: dict[str, str], message: str) -> None:
    result = reconcile_cli(stack, *args, **env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


def test_stack_not_running_is_one_clear_line(stack: RunningStack) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "callvault_local.cli", "reconcile", "--vendor", "voiceos", "--moto-port", "1"],
        cwd=ROOT,
        env={**os.environ, "CALLVAULT_API_KEY_VOICEOS": "k"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1 and "make dev" in result.stderr and "Traceback" not in result.stderr
