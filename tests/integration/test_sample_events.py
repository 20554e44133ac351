"""`events/*.json` (for `sam local invoke`) are valid, authenticated with the local secrets, and stored."""

from __future__ import annotations

import json

import pytest

from callvault_local.apigw import LambdaContext
from callvault_local.sample_events import resigned
from callvault_local.template import routes
from tests.conftest import ROOT, Stored, handler_for

WEBHOOKS = [r for r in routes() if r.path.startswith("/webhooks/")]


@pytest.mark.parametrize("route", WEBHOOKS, ids=lambda r: r.code_uri.name)
def test_sample_event_is_stored(stored: Stored, monkeypatch: pytest.MonkeyPatch, route) -> None:  # type: ignore[no-untyped-def]
    vendor = route.path.split("/")[2]
    monkeypatch.setenv(f"CALLVAULT_SECRET_{vendor.upper()}", f"dev-{vendor}-secret")
    event = resigned(json.loads((ROOT / "events" / f"{route.code_uri.name}.json").read_text()))
    assert event["rawPath"] == route.path and event["version"] == "2.0"
    response = handler_for(route.path)(event, LambdaContext())
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["status"] == "stored"
