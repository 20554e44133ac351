"""The scheduled functions: each vendor's reconcile pass (its key from Secrets Manager, off until
set) and the stale-session count (any vendor, no Scan)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from callvault import config, store
from callvault_local.apigw import LambdaContext
from callvault_local.fake_vendor_apis import FakeVendorApi
from callvault_local.stack import LocalStack
from tests.conftest import Stored, function_handler, post_webhook


@pytest.fixture
def api_key_secret(stored: Stored, local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The voiceos reconcile function's API key secret, as the template gives it (empty)."""
    arn = local_stack.secret_arns["voiceosapikey"]
    for name, value in {
        "RECORDING_ALLOW_LOOPBACK": "true",
        "API_BACKOFF_SECONDS": "0.01",
        "SECRET_CACHE_SECONDS": "0",
        "POWERTOOLS_METRICS_DISABLED": "false",
    }.items():
        monkeypatch.setenv(name, value)
    config.settings.cache_clear()
    yield arn
    config.settings.cache_clear()


def metrics_of(output: str) -> dict[str, tuple[float, dict[str, str]]]:
    found = {}
    for line in output.splitlines():
        if line.startswith('{"_aws"'):
            record = json.loads(line)
            for metric in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                dims = {d: record[d] for d in record["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]}
                value = record[metric["Name"]]
                found[metric["Name"]] = (value[0] if isinstance(value, list) else value, dims)
    return found


def test_reconcile_is_off_until_the_key_is_set_then_recovers_what_webhooks_missed(
    api_key_secret: str, stored: Stored, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeVendorApi("voiceos", key="vo-key") as api:
        monkeypatch.setenv("API_URL", api.url)
        api.populate(4, start=datetime.now(UTC) - timedelta(minutes=20))
        delivered = api.conversations["conv-000000"].body
        post_webhook("voiceos", "events", {"event": f"conversation:{delivered['status']}", "data": delivered})
        reconcile = function_handler("ReconcileVoiceosFunction")

        assert reconcile({}, LambdaContext())["status"] == "off"
        assert sum(api.requests.values()) == 0

        boto3.client("secretsmanager").put_secret_value(SecretId=api_key_secret, SecretString="vo-key")
        capsys.readouterr()
        result = reconcile({}, LambdaContext())
        assert result["status"] == "ok" and (result["listed"], result["stored"], result["recovered"]) == (4, 3, 3)
        emitted = metrics_of(capsys.readouterr().out)
        assert emitted["SessionsRecovered"] == (3, {"vendor": "voiceos", "service": "callvault"})
        assert emitted["ReconcileFailures"] == (0, {"vendor": "voiceos", "service": "callvault"})

        boto3.client("secretsmanager").put_secret_value(SecretId=api_key_secret, SecretString="revoked")
        result = reconcile({}, LambdaContext())
        assert result["status"] == "failed" and "refused the key" in result["refused"]
        assert metrics_of(capsys.readouterr().out)["ReconcileFailures"] == (1, {"vendor": "voiceos", "service": "callvault"})


def test_stale_sessions_are_counted_without_a_scan(
    stored: Stored, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from callvault import reconcile

    now = datetime.now(UTC)

    def voiceos_event(session_id: str, status: str, created: datetime) -> None:
        body = {
            "event": f"conversation:{status}",
            "data": {"id": session_id, "status": status, "created_at": created.isoformat()},
        }
        assert post_webhook("voiceos", "events", body).status == 200

    voiceos_event("quiet", "started", now - timedelta(hours=5))
    voiceos_event("ended", "ended", now - timedelta(hours=5))
    voiceos_event("fresh", "started", now - timedelta(minutes=5))
    # Session items are written with the time they were heard of: age the quiet one's last event.
    table = boto3.client("dynamodb")
    for session_id in ("quiet", "ended"):
        table.update_item(
            TableName=stored.table,
            Key={"pk": {"S": store.session_pk("voiceos", session_id)}, "sk": {"S": "SESSION"}},
            UpdateExpression="SET updated_at = :old",
            ExpressionAttributeValues={":old": {"S": (now - timedelta(hours=4)).isoformat()}},
        )
    from callvault import aws

    client, queries = aws.dynamodb(), []
    query = client.query
    monkeypatch.setattr(client, "scan", lambda **_: pytest.fail("a Scan"))

    def counted_query(**kwargs: Any) -> Any:
        queries.append(kwargs["IndexName"])
        return query(**kwargs)

    monkeypatch.setattr(client, "query", counted_query)
    assert reconcile.count_stale(now) == {"voiceos": 1}
    assert set(queries) == {"by-vendor-status"}
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    capsys.readouterr()
    assert function_handler("SessionsStaleFunction")({}, LambdaContext())["stale"] == {"voiceos": 1}
    assert metrics_of(capsys.readouterr().out)["SessionsStale"][0] == 1


@pytest.mark.parametrize(
    ("vendor", "secret_value"),
    [("vapi", '["vapi-key"]'), ("retell", "retell-key"), ("elevenlabs", "elevenlabs-key")],
    ids=["vapi-json-list", "retell", "elevenlabs"],
)
def test_each_new_pull_vendor_reconciles_from_its_own_secret_and_url(
    stored: Stored, local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch, vendor: str, secret_value: str
) -> None:
    """Vapi's key is the one its recordings are fetched with; each secret holds the bare key (as
    the README says), and a JSON list, as earlier versions said, is read too. Off until set."""
    arn = local_stack.secret_arns[f"{vendor}apikey"]  # the template's secret for the vendor's key (empty)
    for name, value in {
        "RECORDING_ALLOW_LOOPBACK": "true",
        "API_BACKOFF_SECONDS": "0.01",
        "SECRET_CACHE_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    config.settings.cache_clear()
    key = secret_value.strip('[]"')
    with FakeVendorApi(vendor, key=key) as api:
        monkeypatch.setenv("API_URL", api.url)
        api.populate(3, start=datetime.now(UTC) - timedelta(minutes=40))
        reconcile = function_handler(f"Reconcile{vendor.capitalize()}Function")
        assert reconcile({}, LambdaContext())["status"] == "off" and sum(api.requests.values()) == 0
        boto3.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=secret_value)
        result = reconcile({}, LambdaContext())
        assert result["status"] == "ok" and (result["listed"], result["stored"], result["recovered"]) == (3, 3, 3)
    config.settings.cache_clear()
