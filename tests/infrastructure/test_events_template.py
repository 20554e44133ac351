"""Events out in the template: the bus always, putting on it opt-in, the outbound webhooks'
resources only with a NotifyUrl, each function with exactly the calls it makes."""

from __future__ import annotations

import pytest

from callvault import notify
from callvault_local.template import load
from tests.infrastructure.test_template import _resolve

RESOURCES = load()["Resources"]
NOTIFY = sorted(name for name in RESOURCES if name.startswith("Notify"))


def _conditions(parameters: dict[str, str]) -> dict[str, bool]:
    return {name: bool(_resolve({"Fn::Condition": name}, parameters)) for name in ("PutsEvents", "Notifies")}


def test_the_bus_always_exists_and_putting_on_it_is_opt_in() -> None:
    assert "Condition" not in RESOURCES["EventBus"]
    assert _conditions({}) == {"PutsEvents": False, "Notifies": False}  # the default stack: no event put, no cost
    assert _conditions({"CallEvents": "true"}) == {"PutsEvents": True, "Notifies": False}
    assert _conditions({"NotifyUrl": "https://hooks.example.com/callvault"}) == {"PutsEvents": True, "Notifies": True}
    assert NOTIFY and all(RESOURCES[name].get("Condition") == "Notifies" for name in NOTIFY)  # nothing of it when off
    assert load()["Parameters"]["NotifyUrl"]["AllowedPattern"] == r"^(https://\S+)?$"  # https only in AWS


@pytest.mark.parametrize("on", [False, True])
def test_session_changes_may_put_on_the_bus_only_when_on_and_only_there(on: bool) -> None:
    function = _resolve(RESOURCES["SessionChangesFunction"], {"CallEvents": str(on).lower()})
    statements = [s for policy in function["Properties"]["Policies"] for s in policy["Statement"]]
    granted = {a: s for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    bus = function["Properties"]["Environment"]["Variables"]["EVENT_BUS_NAME"]
    if not on:
        assert bus == "" and "events:PutEvents" not in granted
        return
    assert bus == {"Ref": "EventBus"}
    assert granted["events:PutEvents"]["Resource"] == {"Fn::GetAtt": ["EventBus", "Arn"]}
    assert granted["s3:GetObject"]["Resource"] == {"Fn::Sub": "${ArchiveBucket.Arn}/raw/*"}  # referenced values, raw bodies only


def test_the_sender_reads_its_queue_and_secret_only_and_retries_for_hours() -> None:
    function = RESOURCES["NotifyFunction"]["Properties"]
    statements = [s for policy in function["Policies"] for s in policy["Statement"]]
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("sqs:ChangeMessageVisibility", {"Fn::GetAtt": ["NotifyQueue", "Arn"]}),
        ("secretsmanager:GetSecretValue", {"Ref": "NotifySecret"}),
    ]
    (source,) = function["Events"].values()
    assert source["Type"] == "SQS" and source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    env = function["Environment"]["Variables"]
    assert env["NOTIFY_QUEUE_URL"] == {"Ref": "NotifyQueue"} and env["NOTIFY_SECRET_ARN"] == {"Ref": "NotifySecret"}
    queue = RESOURCES["NotifyQueue"]["Properties"]
    # AWS: a queue's visibility timeout at least six times its function's timeout.
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["NotifyDeadLetterQueue", "Arn"]}
    assert float(env["NOTIFY_TIMEOUT_SECONDS"]) * 2 < function["Timeout"]  # connect + read, inside the invocation


def test_the_retry_window_is_hours_and_inside_the_queue_retention(monkeypatch: pytest.MonkeyPatch) -> None:
    env = RESOURCES["NotifyFunction"]["Properties"]["Environment"]["Variables"]
    for name in ("NOTIFY_BACKOFF_SECONDS", "NOTIFY_BACKOFF_MAX_SECONDS"):
        monkeypatch.setenv(name, env[name])
    queue = RESOURCES["NotifyQueue"]["Properties"]
    receives = queue["RedrivePolicy"]["maxReceiveCount"]
    window = sum(notify.backoff_seconds(n) for n in range(1, receives + 1))
    assert 4 * 3600 <= window < queue["MessageRetentionPeriod"]


def test_only_the_rule_may_send_to_the_queue() -> None:
    (statement,) = RESOURCES["NotifyQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["NotifyRule", "Arn"]}}}
    rule = RESOURCES["NotifyRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "EventBus"} and rule["EventPattern"] == {"source": ["callvault"]}
