"""`events/*.json` (for `sam local invoke`) are valid, authenticated with the local secrets, and stored."""

from __future__ import annotations

import json

import pytest

from callvault_local.apigw import LambdaContext
from callvault_local.sample_events import resigned
from callvault_local.template import routes
from tests.conftest import ROOT, Stored, handler_for, put_secret

WEBHOOKS = [r for r in routes() if r.path.startswith("/webhooks/")]


@pytest.mark.parametrize("route", WEBHOOKS, ids=lambda r: r.code_uri.name)
def test_sample_event_is_stored(stored: Stored, monkeypatch: pytest.MonkeyPatch, route) -> None:  # type: ignore[no-untyped-def]
    vendor = route.path.split("/")[2]
    put_secret(vendor, f"dev-{vendor}-secret")
    event = resigned(json.loads((ROOT / "events" / f"{route.code_uri.name}.json").read_text()))
    assert event["rawPath"] == route.path and event["version"] == "2.0"
    response = handler_for(route.path)(event, LambdaContext())
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["status"] == "stored"


def test_make_events_is_current_and_deterministic() -> None:
    """`make events` writes what is committed, the same on every run (no clock in it, but for the
    signing time of the vendors that sign one, which it does not rewrite a file for)."""
    from callvault_local import sample_events

    rendered = {path: sample_events.comparable(content) for path, content in sample_events.render().items()}
    assert rendered == {path: sample_events.comparable(content) for path, content in sample_events.render().items()}
    stale = [
        str(path.relative_to(ROOT)) for path, content in rendered.items() if sample_events.comparable(path.read_text()) != content
    ]
    assert stale == [], "run `make events`"


def test_make_events_points_env_local_json_at_moto_port() -> None:
    from callvault_local import sample_events

    env_vars = json.loads(sample_events.render(moto_port=5917)[sample_events.ENV_VARS_FILE])
    assert env_vars["Parameters"]["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5917"


@pytest.mark.parametrize("vendor", ["retell", "elevenlabs"])
def test_make_events_signs_a_stale_timed_signature_again(stored: Stored, monkeypatch: pytest.MonkeyPatch, vendor: str) -> None:
    """A Retell or ElevenLabs event signed long ago (an hour: past both vendors' tolerance) is
    refused: `make events` makes its signature again (the file as written is then accepted as it
    is), and a run just after writes nothing. The stale file is made here, not read from the
    working tree, whose signature is as old as the last `make events`."""
    import time

    from callvault_local import sample_events

    (route,) = [r for r in WEBHOOKS if r.path.startswith(f"/webhooks/{vendor}/")]
    target = ROOT / "events" / f"{route.code_uri.name}.json"
    an_hour_ago = time.time() - 3600
    with monkeypatch.context() as earlier:
        earlier.setattr(time, "time", lambda: an_hour_ago)
        stale = sample_events.render()[target]
    now = time.time()
    assert sample_events.needs_writing(stale, stale, now), "a signature an hour old is stale"
    fresh = sample_events.render()[target]
    assert not sample_events.needs_writing(fresh, sample_events.render()[target], time.time())
    put_secret(vendor, f"dev-{vendor}-secret")
    response = handler_for(route.path)(json.loads(fresh), LambdaContext())
    assert response["statusCode"] == 200, response
    refused = handler_for(route.path)(json.loads(stale), LambdaContext())
    assert refused["statusCode"] == 401, refused
