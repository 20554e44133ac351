"""The read API's shape against what was written: every field of the normalized session is
filled by some sample payload and comes back through the read API (a field the reader drops
fails here; the recording's own fields are walked in test_recordings.py)."""

from __future__ import annotations

import json
from typing import Any

from callvault.models import Session
from callvault_local.dev import LocalApi
from tests.conftest import DOC_EXAMPLES, PAYLOADS, Stored, adapter_for, post_webhook


def _filled(value: Any) -> bool:
    return value not in (None, {}, [], "")


def test_every_session_field_written_is_read_back(stored: Stored) -> None:
    api, seen = LocalApi(), set()
    samples = [(path.parent.name, path) for path in sorted(PAYLOADS.glob("*/*.json"))]
    samples += [(path.stem, path) for path in sorted(DOC_EXAMPLES.glob("*.json"))]
    for vendor, path in samples:
        adapter = adapter_for(vendor)
        webhook = path.stem if path.stem in adapter.webhooks else next(iter(adapter.webhooks))
        reply = post_webhook(vendor, webhook, path.read_bytes())
        if reply.json.get("status") != "stored":
            continue  # acknowledged-only types
        got = api.handle("GET", f"/sessions/{vendor}/{reply.json['session_id']}", {}, b"", "127.0.0.1")
        assert got.status == 200, got
        seen |= {name for name, value in json.loads(got.body).items() if _filled(value)}
    assert seen == set(Session.model_fields), set(Session.model_fields) - seen
