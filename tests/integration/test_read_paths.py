"""The read API's paths as API Gateway hands them on: percent-decoded session ids, unknown
vendors and routes (through the local HttpApi, which decodes as an HTTP API does)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from callvault_local.dev import LocalApi
from tests.conftest import Stored, payload, post_webhook


def _get(target: str, method: str = "GET") -> tuple[int, Any]:
    reply = LocalApi().handle(method, target, {}, b"", "127.0.0.1")
    return reply.status, json.loads(reply.body)


def test_a_session_id_that_needs_encoding_is_found_by_its_decoded_id(stored: Stored) -> None:
    body = payload("speaknode/conversation-complete")
    body["data"]["session_id"] = "<string> é+1"
    assert post_webhook("speaknode", "conversation-complete", body).json["status"] == "stored"
    status, session = _get(f"/sessions/speaknode/{quote('<string> é+1', safe='')}")
    assert status == 200, session
    assert session["session_id"] == "<string> é+1"
    status, missing = _get("/sessions/speaknode/%3Cother%3E")
    assert status == 404 and "'<other>'" in missing["error"], missing  # named decoded, as the caller meant it


def test_unknown_vendor_in_a_path_is_404_naming_the_vendors(stored: Stored) -> None:
    status, body = _get("/sessions/Cozmox/x")
    assert status == 404 and body["error"].startswith("no vendor 'Cozmox'") and "cozmox" in body["error"], body


def test_unknown_routes_and_methods_answer_as_api_gateway(stored: Stored) -> None:
    unrouted = [("GET", "/session"), ("POST", "/sessions"), ("GET", "/sessions/cozmox"), ("GET", "/webhooks/voiceos/events")]
    for method, target in unrouted:
        assert _get(target, method) == (404, {"message": "Not Found"}), (method, target)


def test_every_vendor_listing_merges_vendors_created_at_the_same_moment(stored: Stored) -> None:
    """A listing of every vendor merges one Query per vendor: sessions of several vendors created
    at the same time, split across pages, come once each, in one order (list_sk: time, vendor, id)."""
    from callvault_local.samples import VENDORS, session_webhook

    moment = "2026-11-20T09:00:00.000Z"
    expected = []
    for vendor in VENDORS[:3]:
        for n in range(3):
            webhook = session_webhook(vendor, f"same-moment-{n}", moment, ended=False)
            assert post_webhook(vendor, webhook.webhook, webhook.body).json["status"] == "stored"
            expected.append(f"{moment}#{vendor}#same-moment-{n}")
    seen, cursor = [], None
    for _ in range(len(expected)):
        status, page = _get("/sessions?limit=2" + (f"&cursor={quote(cursor)}" if cursor else ""))
        assert status == 200, page
        seen += [f"{i['created_at']}#{i['vendor']}#{i['session_id']}" for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(expected, reverse=True)
