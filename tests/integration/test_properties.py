"""Properties over every webhook route (hypothesis): whatever the bytes and headers, the answer is
2xx or 4xx, never 5xx; and nothing is written unless the request is authenticated."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callvault_local.apigw import LambdaContext, http_event
from callvault_local.sample_events import SAMPLES
from callvault_local.stack import LocalStack
from callvault_local.template import routes
from tests.conftest import SECRETS, adapter_for, handler_for, payload

WEBHOOKS = sorted(r.path for r in routes() if r.path.startswith("/webhooks/"))
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

header_names = st.sampled_from(
    ["authorization", "x-vapi-secret", "x-vapi-signature", "x-signature", "x-timestamp", "x-speaknode-signature", "webhook-id",
     "x-retell-signature", "elevenlabs-signature", "webhook-timestamp", "webhook-signature", "content-type", "content-encoding",
     "x-anything"]
)  # fmt: skip
header_values = st.text(st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=80)
headers = st.dictionaries(header_names, header_values, max_size=5)
# Any code point, lone surrogates too: JSON escapes them (`"\\ud83d"`), and a vendor in JavaScript
# that cuts a string mid-emoji sends one (st.text() alone never makes them).
texts = st.text(st.characters(exclude_categories=()), max_size=40)
bodies = st.one_of(
    st.binary(max_size=2000),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
        max_leaves=20,
    ).map(lambda value: json.dumps(value).encode()),
)


def _writes(stack: LocalStack) -> tuple[int, int]:
    objects = boto3.client("s3").list_object_versions(Bucket=stack.bucket_name).get("Versions", [])
    items = boto3.client("dynamodb").scan(TableName=stack.table_name, Select="COUNT")["Count"]  # tests only
    return len(objects), items


def _call(path: str, body: bytes, request_headers: dict[str, str], *, base64: bool = False) -> dict[str, Any]:
    event = http_event("POST", path, body, request_headers)
    if base64 and not event["isBase64Encoded"]:
        event["isBase64Encoded"], event["body"] = True, event["body"] + "%%"  # not base64 at all
    result: dict[str, Any] = handler_for(path)(event, LambdaContext())
    return result


@pytest.mark.parametrize("path", WEBHOOKS)
@SETTINGS
@given(body=bodies, request_headers=headers, broken_base64=st.booleans())
def test_unauthenticated_requests_get_4xx_and_write_nothing(
    local_stack: LocalStack, path: str, body: bytes, request_headers: dict[str, str], broken_base64: bool
) -> None:
    before = _writes(local_stack)
    result = _call(path, body, request_headers, base64=broken_base64)
    assert 400 <= result["statusCode"] < 500, result
    assert result["statusCode"] != 200
    assert json.loads(result["body"]).keys() == {"error"}
    assert _writes(local_stack) == before


@pytest.mark.parametrize("path", WEBHOOKS)
@SETTINGS
@given(body=bodies, extra=headers)
def test_authenticated_garbage_gets_2xx_or_4xx_never_5xx(
    local_stack: LocalStack, path: str, body: bytes, extra: dict[str, str]
) -> None:
    vendor = path.split("/")[2]
    signed = {
        k: v
        for k, v in extra.items()
        if k not in ("authorization", "x-signature", "x-timestamp", "x-retell-signature", "elevenlabs-signature")
    }
    signed.update(adapter_for(vendor).sign(body, SECRETS[vendor]))
    result = _call(path, body, signed)
    assert result["statusCode"] in (200, 400), result  # stored/duplicate/ignored, or quarantined


@pytest.mark.parametrize("path", WEBHOOKS)
@SETTINGS
@given(data=st.data())
def test_real_payloads_with_any_field_replaced_never_5xx(local_stack: LocalStack, path: str, data: st.DataObject) -> None:
    vendor = path.split("/")[2]
    body: Any = payload(SAMPLES[path])  # the route's sample event payload (`make events`)
    # walk to a random place in the payload and put any JSON value there
    target = body
    for _ in range(data.draw(st.integers(0, 4))):
        if isinstance(target, dict) and target:
            key = data.draw(st.sampled_from(sorted(target)))
            if isinstance(target[key], (dict, list)) and target[key]:
                target = target[key]
    if isinstance(target, dict) and target:
        key = data.draw(st.sampled_from(sorted(target)))
        target[key] = data.draw(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts | st.lists(st.integers(), max_size=3)
        )
    raw = json.dumps(body).encode()
    signed = {"content-type": "application/json", **adapter_for(vendor).sign(raw, SECRETS[vendor])}
    result = _call(path, raw, signed)
    assert result["statusCode"] in (200, 400), (result, raw[:300])
