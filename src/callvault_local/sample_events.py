"""Write `events/<function>.json`: an API Gateway event per webhook function, wrapping a sample
vendor payload and authenticated with the local secret `dev-<vendor>-secret`.

    uv run python -m callvault_local.sample_events
"""

from __future__ import annotations

import importlib
import json

from callvault_local.apigw import http_event
from callvault_local.template import ROOT, routes

# The payload each webhook's sample event carries.
SAMPLES = {
    "/webhooks/agentsessions/session-completed": "agentsessions/session-completed",
    "/webhooks/cozmox/server-messages": "cozmox/end-of-call-report",
    "/webhooks/voiceos/events": "voiceos/conversation-ended",
    "/webhooks/speaknode/session-started": "speaknode/session-started",
    "/webhooks/speaknode/conversation-complete": "speaknode/conversation-complete",
}


def build(path: str) -> dict[str, object]:
    vendor = path.split("/")[2]
    body = (ROOT / "events" / "payloads" / f"{SAMPLES[path]}.json").read_bytes()
    adapter = importlib.import_module(f"callvault.vendors.{vendor}").ADAPTER
    headers = {
        "content-type": "application/json",
        "user-agent": f"{vendor}-webhooks",
        **adapter.sign(body, f"dev-{vendor}-secret"),
    }
    event = http_event("POST", path, body, headers)
    event["requestContext"]["requestId"] = f"sample-{vendor}"
    return event


def main() -> None:
    for route in routes():
        if route.path in SAMPLES:
            target = ROOT / "events" / f"{route.code_uri.name}.json"
            target.write_text(json.dumps(build(route.path), indent=2) + "\n")
            print(target.relative_to(ROOT))


if __name__ == "__main__":
    main()
