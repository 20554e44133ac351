"""Write `events/<function>.json`: an API Gateway event per webhook function, wrapping a sample
vendor payload and authenticated with the local secret `dev-<vendor>-secret`; and
`env.local.json`, the `sam local invoke --env-vars` file that points every function at the
resources `make dev` serves on its moto endpoint.

    make events     (or: uv run python -m callvault_local.sample_events [--moto-port N])

The output depends on nothing but the repository (and MOTO_PORT), but for the Retell and ElevenLabs
events' signatures, which carry their signing time: those are made again once a minute old, so that
the events are accepted when invoked just after; a second run within the minute changes nothing.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import re
import time
from pathlib import Path
from typing import Any

from callvault_local.apigw import http_event
from callvault_local.console import DEFAULT_MOTO_PORT, add_local_options, local_stack
from callvault_local.stack import LOCAL_BUCKET, LOCAL_TABLE, local_secret_name, vendor_of_secret
from callvault_local.template import ROOT, resources_of_type, routes

ENV_VARS_FILE = ROOT / "env.local.json"
# The request time the sample events carry: fixed, so that regenerating them changes nothing.
SAMPLE_EPOCH = 1795176000.0  # 2026-11-20T12:00:00Z

# The payload each webhook's sample event carries.
SAMPLES = {
    "/webhooks/agentsessions/session-completed": "agentsessions/session-completed",
    "/webhooks/cozmox/server-messages": "cozmox/end-of-call-report",
    "/webhooks/voiceos/events": "voiceos/conversation-ended",
    "/webhooks/speaknode/session-started": "speaknode/session-started",
    "/webhooks/speaknode/conversation-complete": "speaknode/conversation-complete",
    "/webhooks/retell/events": "retell/call-analyzed",
    "/webhooks/elevenlabs/post-call": "elevenlabs/post-call-transcription",
    "/webhooks/vapi/server-messages": "vapi/end-of-call-report",
}


# These vendors sign a time into the signature (Retell: 5 minutes either way, ElevenLabs: 30 minutes
# back), so a saved sample event goes stale: run `make events` again just before `sam local invoke`.
SIGNED_WITH_TIME = frozenset({"retell", "elevenlabs"})


def resigned(event: dict[str, Any]) -> dict[str, Any]:
    """A saved sample event with its signature made again now (for SIGNED_WITH_TIME vendors)."""
    vendor = event["rawPath"].split("/")[2]
    if vendor not in SIGNED_WITH_TIME:
        return event
    adapter = importlib.import_module(f"callvault.vendors.{vendor}").ADAPTER
    body = event["body"].encode() if not event.get("isBase64Encoded") else base64.b64decode(event["body"])
    fresh = {name.lower(): value for name, value in adapter.sign(body, f"dev-{vendor}-secret").items()}
    return {**event, "headers": {**event["headers"], **fresh}}


# The headers whose value carries the signing time, per SIGNED_WITH_TIME vendor, and how to read it.
_TIMED_HEADERS = {"retell": "x-retell-signature", "elevenlabs": "elevenlabs-signature"}
_SIGNING_TIME = {"retell": (re.compile(r"v=(\d+)"), 1000), "elevenlabs": (re.compile(r"t=(\d+)"), 1)}
# A saved signature older than this is made again: the file is then good for the next few minutes
# (Retell takes 5), and a second run just after the first writes nothing.
RESIGN_AFTER_SECONDS = 60


def signed_at(content: str) -> float | None:
    """When a rendered sample event's signature was made (epoch seconds); None: not timed."""
    data = json.loads(content)
    vendor = str(data.get("rawPath", "")).split("/")[2:3]
    timed = _TIMED_HEADERS.get(vendor[0]) if vendor else None
    if timed is None:
        return None
    pattern, per_second = _SIGNING_TIME[vendor[0]]
    found = pattern.search(str({k.lower(): v for k, v in data["headers"].items()}.get(timed, "")))
    return int(found.group(1)) / per_second if found else 0.0


def needs_writing(existing: str | None, content: str, now: float) -> bool:
    """Whether `make events` writes a file: it is new, it changed, or its timed signature went stale."""
    if existing is None or comparable(existing) != comparable(content):
        return True
    made = signed_at(existing)
    return made is not None and now - made > RESIGN_AFTER_SECONDS


def comparable(content: str) -> str:
    """A rendered file with its signing time left out: what `make events` compares, so that a
    second run writes nothing although Retell's and ElevenLabs' signatures change every second."""
    data = json.loads(content)
    vendor = str(data.get("rawPath", "")).split("/")[2:3]
    timed = _TIMED_HEADERS.get(vendor[0]) if vendor else None
    if timed is None:
        return content
    headers = {name: value for name, value in data["headers"].items() if name.lower() != timed}
    return json.dumps({**data, "headers": headers}, indent=2)


def build(path: str) -> dict[str, object]:
    vendor = path.split("/")[2]
    body = (ROOT / "events" / "payloads" / f"{SAMPLES[path]}.json").read_bytes()
    adapter = importlib.import_module(f"callvault.vendors.{vendor}").ADAPTER
    headers = {
        "content-type": "application/json",
        "user-agent": f"{vendor}-webhooks",
        **adapter.sign(body, f"dev-{vendor}-secret"),
    }
    event = http_event("POST", path, body, headers, now=SAMPLE_EPOCH)
    event["requestContext"]["requestId"] = f"sample-{vendor}"
    return event


def sam_local_env_vars(moto_port: int = DEFAULT_MOTO_PORT) -> dict[str, Any]:
    """SAM's env-vars file: moto's endpoint and the local names for all functions, and for each
    function that reads secrets, the names `make dev` gives them in moto."""
    everywhere = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}", "TABLE_NAME": LOCAL_TABLE, "BUCKET_NAME": LOCAL_BUCKET}
    env_vars: dict[str, Any] = {"Parameters": everywhere}
    secrets = resources_of_type("AWS::SecretsManager::Secret")
    for logical_id, function in resources_of_type("AWS::Serverless::Function").items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        named = {
            name: local_secret_name(vendor_of_secret(value["Ref"]))
            for name, value in variables.items()
            if isinstance(value, dict) and value.get("Ref") in secrets
        }
        if named:
            env_vars[logical_id] = named
    return env_vars


def render(moto_port: int = DEFAULT_MOTO_PORT) -> dict[Path, str]:
    """Every file `make events` writes, and its content."""
    files = {
        ROOT / "events" / f"{route.code_uri.name}.json": json.dumps(build(route.path), indent=2) + "\n"
        for route in routes()
        if route.path in SAMPLES
    }
    files[ENV_VARS_FILE] = json.dumps(sam_local_env_vars(moto_port), indent=2) + "\n"
    return files


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="make events", description=__doc__.splitlines()[0])
    add_local_options(parser)  # env.local.json points at MOTO_PORT (or --moto-port)
    stack = local_stack(parser.parse_args(argv))
    now = time.time()
    for target, content in render(stack.moto_port).items():
        if needs_writing(target.read_text() if target.exists() else None, content, now):
            target.write_text(content)
            print(f"{target.relative_to(ROOT)} written")


if __name__ == "__main__":
    main()
