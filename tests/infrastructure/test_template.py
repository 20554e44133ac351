"""The SAM template: valid, wired to handlers that exist, least privilege, storage protected."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from callvault_local.template import load, resources_of_type, routes, source
from tests.conftest import ROOT, handler_for

CONTRACT_ROUTES = {
    ("POST", "/webhooks/agentsessions/session-completed"),
    ("POST", "/webhooks/cozmox/server-messages"),
    ("POST", "/webhooks/voiceos/events"),
    ("POST", "/webhooks/speaknode/session-started"),
    ("POST", "/webhooks/speaknode/conversation-complete"),
    ("GET", "/sessions"),
    ("GET", "/sessions/{vendor}/{session_id}"),
    ("DELETE", "/sessions/{vendor}/{session_id}"),
}
SESSION_ROUTES = [r for r in routes() if r.path.startswith("/sessions")]
READ_ROUTES = [r for r in SESSION_ROUTES if r.method == "GET"]


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def test_cfn_lint_passes_with_informational_checks() -> None:
    # I3011 among them: every stateful resource says what happens to it on delete and replace.
    result = subprocess.run(
        [_bin("cfn-lint"), "--include-checks", "I", "--", "template.yaml"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes() -> None:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(
        [_bin("sam"), "validate", "--lint", "--region", "us-east-1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_sam_validate_expands_the_loops_as_samconfig_says() -> None:
    """Plain `sam validate` (no flag): samconfig.toml turns on SAM CLI's own Fn::ForEach expansion."""
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS", None)
    result = subprocess.run(
        [_bin("sam"), "validate", "--region", "us-east-1"], cwd=ROOT, capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_webhook_is_said_once() -> None:
    """One row of Mappings.Webhooks per route; the loops over its keys make everything else."""
    template = source()
    webhooks = template["Mappings"]["Webhooks"]
    loops = {
        key: value
        for section in ("Resources", "Outputs")
        for key, value in template[section].items()
        if key.startswith("Fn::ForEach::")
    }
    assert loops["Fn::ForEach::Webhooks"][1] == loops["Fn::ForEach::WebhookUrls"][1] == list(webhooks)
    secrets = sorted({row["Secret"] for row in webhooks.values()})
    assert sorted(f"{v}Secret" for v in loops["Fn::ForEach::VendorSecrets"][1]) == secrets
    assert loops["Fn::ForEach::VendorSecrets"][1] == loops["Fn::ForEach::VendorSecretOutputs"][1]
    for name, row in webhooks.items():
        assert row["Path"] == f"/webhooks/{row['Vendor']}/{row['Route']}", name
        assert row["Secret"] == f"{row['Vendor'].capitalize()}Secret", name
        assert (ROOT / row["Code"] / "app.py").is_file(), name
    assert not any(
        r["Type"] == "AWS::Serverless::Function" and "Webhook" in r["Properties"].get("Events", {})
        for r in template["Resources"].values()
        if isinstance(r, dict)
    )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # samtranslator's own
def test_the_local_reader_expands_the_template_as_sam_cli_does() -> None:
    """`make dev`, the tests and checkov read `load()`; `sam build` and `sam local` read SAM CLI's expansion."""
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    stacks, _ = SamLocalStackProvider.get_stacks(str(ROOT / "template.yaml"), language_extensions_enabled=True)
    by_sam = {f.name: f for f in SamFunctionProvider(stacks).get_all()}
    assert set(by_sam) == set(resources_of_type("AWS::Serverless::Function"))
    for route in routes():
        function = by_sam[route.function]
        assert (ROOT / function.codeuri).resolve() == route.code_uri.resolve()
        assert function.handler == route.handler
        paths = {e["Properties"]["Path"] for e in function.events.values() if e["Type"] == "HttpApi"}
        assert route.path in paths
        secret = route.environment.get("SECRET_ARN")
        assert function.environment["Variables"].get("SECRET_ARN") == (secret["Ref"] if secret else None)


def test_every_contract_route_is_served() -> None:
    assert {(r.method, r.path) for r in routes()} >= CONTRACT_ROUTES


@pytest.mark.parametrize("route", [r for r in routes() if r.path.startswith("/webhooks/")], ids=lambda r: r.path)
def test_webhook_route_wired_to_its_vendor_handler(route: Any) -> None:
    assert (route.code_uri / "app.py").is_file()
    handler = handler_for(route.path)
    _, _, vendor, webhook = route.path.split("/")
    assert (handler.vendor, handler.webhook) == (vendor, webhook)  # type: ignore[attr-defined]
    assert route.environment["SECRET_ARN"] == {"Ref": f"{vendor.capitalize()}Secret"}


def test_globals() -> None:
    function = load()["Globals"]["Function"]
    assert function["Runtime"] == "python3.13" and function["Architectures"] == ["arm64"]
    assert function["Tracing"] == "Active"
    layer = resources_of_type("AWS::Serverless::LayerVersion")["CallvaultLayer"]
    assert layer["Metadata"]["BuildMethod"] == "python3.13"
    assert layer["Properties"]["ContentUri"] == "layers/callvault/"


# Vendors whose webhooks carry the recording itself (ElevenLabs' post_call_audio).
BODY_RECORDINGS = frozenset({"elevenlabs"})


def _statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in function["Properties"]["Policies"] for s in policy["Statement"]]


@pytest.mark.parametrize("route", [r for r in routes() if r.path.startswith("/webhooks/")], ids=lambda r: r.path)
def test_webhook_function_least_privilege(route: Any) -> None:
    _, _, vendor, webhook = route.path.split("/")
    function = load()["Resources"][route.function]
    actions: set[str] = set()
    for statement in _statements(function):
        assert statement["Effect"] == "Allow"
        granted = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any("*" in action for action in granted)
        actions |= set(granted)
        if "s3:PutObject" in granted:
            prefixes = sorted(r["Fn::Sub"].split("}/", 1)[1] for r in statement["Resource"])
            assert prefixes == sorted([f"raw/{vendor}/{webhook}/*", f"quarantine/{vendor}/{webhook}/*"])
        if "s3:DeleteObjectVersion" in granted:  # only what a delivery of a forgotten session just wrote
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert [r["Fn::Sub"].split("}/", 1)[1] for r in resources] == [
                f"raw/{vendor}/{webhook}/*",
                f"quarantine/{vendor}/{webhook}/*",
            ]
        if "dynamodb:PutItem" in granted:
            assert statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == [f"{vendor}#*"]
        if "secretsmanager:GetSecretValue" in granted:
            assert statement["Resource"] == {"Ref": f"{vendor.capitalize()}Secret"}
    assert actions == {
        "s3:PutObject",
        "s3:DeleteObjectVersion",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",  # the session item, whose own condition refuses a tombstone (no ConditionCheckItem)
        "dynamodb:GetItem",  # the tombstone, before archiving an event no transaction will check
        "secretsmanager:GetSecretValue",
    }


def test_only_webhooks_carrying_audio_may_write_audio() -> None:
    # A policy of its own on that webhook function's role: its vendor's audio prefix, nothing else.
    functions = {r.function: r.path.split("/")[2] for r in routes() if r.path.startswith("/webhooks/")}
    policies = resources_of_type("AWS::IAM::Policy").values()
    granted = {}
    for policy in policies:
        (role,) = policy["Properties"]["Roles"]
        statement, listing = policy["Properties"]["PolicyDocument"]["Statement"]
        vendor = functions[role["Ref"].removesuffix("Role")]
        assert statement["Effect"] == listing["Effect"] == "Allow"
        # DeleteObjectVersion, ListBucketVersions: the audio a delivery uploaded while its session was erased
        assert set(statement["Action"]) == {"s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:DeleteObjectVersion"}
        assert statement["Resource"] == {"Fn::Sub": f"${{ArchiveBucket.Arn}}/audio/{vendor}/*"}
        assert listing["Action"] == "s3:ListBucketVersions" and listing["Resource"] == {"Fn::GetAtt": ["ArchiveBucket", "Arn"]}
        assert listing["Condition"] == {"StringLike": {"s3:prefix": f"audio/{vendor}/*"}}
        granted[vendor] = statement
    assert set(granted) == BODY_RECORDINGS


def test_table_is_protected() -> None:
    (table,) = resources_of_type("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert table["DeletionPolicy"] == "Retain"
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert props["DeletionProtectionEnabled"] is True
    # The AWS owned key, as the checkov skip says: SSEEnabled true is the AWS managed KMS key (billed).
    assert props.get("SSESpecification", {"SSEEnabled": False}) == {"SSEEnabled": False}
    (skip,) = [s for s in table["Metadata"]["checkov"]["skip"] if s["id"] == "CKV_AWS_119"]
    assert "AWS owned key" in skip["comment"]


def test_legal_hold_says_ttl_changes_once_an_hour() -> None:
    """LegalHold flips the table's TTL; DynamoDB refuses a second TTL change within about an hour."""
    description = " ".join(source()["Parameters"]["LegalHold"]["Description"].split())
    assert "once an hour" in description and "TTL" in description
    retention = " ".join((ROOT / "docs" / "operating.md").read_text().split())
    assert "allows about once an hour per table" in retention


def test_bucket_is_protected() -> None:
    (bucket,) = resources_of_type("AWS::S3::Bucket").values()
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(
        props["PublicAccessBlockConfiguration"][k] is True
        for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    )
    (policy,) = resources_of_type("AWS::S3::BucketPolicy").values()
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize(
    ("kind", "policy"),
    [
        ("AWS::SecretsManager::Secret", "Delete"),  # credentials do not outlive the stack that checks them
        ("AWS::Logs::LogGroup", "Retain"),  # the record of what ran; their retention expires them
        # Stream record positions, and erasures under way (a session's tombstone says so until done).
        ("AWS::SQS::Queue", "Delete"),
    ],
)
def test_deletion_policy_of_each_kind(kind: str, policy: str) -> None:
    resources = resources_of_type(kind)
    assert resources
    for name, resource in resources.items():
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == (policy, policy), name


def test_outputs_give_every_webhook_url() -> None:
    outputs = load()["Outputs"]
    urls = [o["Value"]["Fn::Sub"] for o in outputs.values() if isinstance(o["Value"], dict) and "Fn::Sub" in o["Value"]]
    for _, path in CONTRACT_ROUTES:
        if path.startswith("/webhooks/"):
            assert any(url.endswith(path) for url in urls), path
    assert any(url.endswith("/sessions") for url in urls)


def test_each_secret_has_one_name_in_outputs_readme_and_messages() -> None:
    """A secret the user puts a value in is named once: its output is the resource's logical id
    (no `...SecretArn` beside `...Secret`), and the README and docs/ name no secret the template lacks."""
    import re

    secrets = set(resources_of_type("AWS::SecretsManager::Secret"))
    outputs = load()["Outputs"]
    for name in secrets - {"CursorSecret"}:  # the cursor key is the stack's own: nothing to put in it
        assert outputs[name]["Value"] == {"Ref": name}, name
    assert not [name for name in outputs if name.endswith("SecretArn")]
    readme = "\n".join(doc.read_text() for doc in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
    named = set(re.findall(r"`<?(\w*Secret)(?:Arn)?>?`", readme)) | set(re.findall(r"\b([A-Z]\w*SecretArn)\b", readme))
    assert named and named <= secrets | {"<Vendor>ApiKeySecret", "<Vendor>Secret"}, named - secrets


def test_every_function_has_log_retention() -> None:
    for name, function in resources_of_type("AWS::Serverless::Function").items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert load()["Resources"][group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


def test_read_routes_take_iam_auth_and_webhooks_do_not() -> None:
    api = load()["Resources"]["HttpApi"]["Properties"]
    assert api["Auth"]["EnableIamAuthorizer"] is True and "DefaultAuthorizer" not in api["Auth"]
    assert {(r.method, r.path) for r in SESSION_ROUTES} == {
        ("GET", "/sessions"),
        ("GET", "/sessions/{vendor}/{session_id}"),
        ("GET", "/sessions/{vendor}/{session_id}/recording"),
        ("DELETE", "/sessions/{vendor}/{session_id}"),
    }
    for name, function in resources_of_type("AWS::Serverless::Function").items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            authorizer = event["Properties"].get("Auth", {}).get("Authorizer")
            if event["Properties"]["Path"].startswith("/sessions"):
                assert authorizer == "AWS_IAM", name
            else:  # vendors cannot sign with SigV4: webhooks verify their own secrets
                assert authorizer is None, name


def test_read_function_is_read_only() -> None:
    (function_name,) = {r.function for r in READ_ROUTES}
    function = load()["Resources"][function_name]
    granted = {a for s in _statements(function) for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert granted == {"dynamodb:Query", "dynamodb:BatchGetItem", "s3:GetObject", "secretsmanager:GetSecretValue"}
    for statement in _statements(function):
        if statement["Action"] == "s3:GetObject":
            # raw bodies (transcripts are read from them), transcripts offloaded by earlier versions,
            # and recordings (the /recording route's presigned URLs read with this role's rights)
            assert statement["Resource"] == [
                {"Fn::Sub": "${ArchiveBucket.Arn}/raw/*"},
                {"Fn::Sub": "${ArchiveBucket.Arn}/sessions/*"},
                {"Fn::Sub": "${ArchiveBucket.Arn}/audio/*"},
            ]
    assert function["Properties"]["Environment"]["Variables"]["SECRET_ARN"] == {"Ref": "CursorSecret"}


def test_listing_indexes_are_keys_only_and_match_the_code() -> None:
    from callvault import store

    (table,) = resources_of_type("AWS::DynamoDB::Table").values()
    indexes = {i["IndexName"]: i for i in table["Properties"]["GlobalSecondaryIndexes"]}
    assert set(indexes) == {name for name, _ in store.INDEXES.values()}  # each index entry is paid on every new session
    for index_name, partition_attr in store.INDEXES.values():
        schema = indexes[index_name]["KeySchema"]
        assert schema == [
            {"AttributeName": partition_attr, "KeyType": "HASH"},
            {"AttributeName": store.LIST_SK_ATTR, "KeyType": "RANGE"},
        ]
        assert indexes[index_name]["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_recording_function_is_fed_by_the_filtered_stream_with_a_dead_letter_queue() -> None:
    import json

    function = load()["Resources"]["RecordingsArchiveFunction"]
    (event,) = function["Properties"]["Events"].values()
    source = event["Properties"]
    assert event["Type"] == "DynamoDB" and source["Stream"] == {"Fn::GetAtt": ["SessionsTable", "StreamArn"]}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and source["BisectBatchOnFunctionError"] is True
    assert source["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["RecordingsDeadLetterQueue", "Arn"]}
    patterns = [json.loads(f["Pattern"]) for f in source["FilterCriteria"]["Filters"]]
    for pattern in patterns:  # each a transition into pending (tests/unit/test_stream_filters.py matches them)
        assert pattern["dynamodb"]["NewImage"] == {"sk": {"S": ["SESSION"]}, "recording_state": {"S": ["pending"]}}
    assert sorted(p["eventName"] for p in patterns) == [["INSERT"], ["MODIFY"], ["MODIFY"]]
    # the copy must end before the function does
    env = function["Properties"]["Environment"]["Variables"]
    assert float(env["RECORDING_TIMEOUT_SECONDS"]) < function["Properties"]["Timeout"]
    # the attempt that would need one more retry than the stream gives marks the recording failed
    assert int(env["RECORDING_MAX_ATTEMPTS"]) == source["MaximumRetryAttempts"] + 1
    assert "RECORDING_ALLOW_LOOPBACK" not in env  # loopback is for the local stack and tests only
    granted = {a for s in _statements(function) for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert granted == {
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:DeleteObjectVersion",  # a copy finished after its session was erased
        "s3:ListBucketVersions",
        "dynamodb:UpdateItem",
        "dynamodb:GetItem",
        "sqs:SendMessage",
        "secretsmanager:GetSecretValue",
    }
    for statement in _statements(function):
        if "s3:PutObject" in statement["Action"] or statement["Action"] == "s3:DeleteObjectVersion":
            assert statement["Resource"] == {"Fn::Sub": "${ArchiveBucket.Arn}/audio/*"}
        if statement["Action"] == "s3:ListBucketVersions":
            assert statement["Condition"] == {"StringLike": {"s3:prefix": "audio/*"}}
        if statement["Action"] == "secretsmanager:GetSecretValue":  # Vapi's and ElevenLabs' API keys (audio), nothing else
            assert statement["Resource"] == [env["API_KEY_ARN_VAPI"], env["API_KEY_ARN_ELEVENLABS"]]
            assert env["API_KEY_ARN_VAPI"] == {"Ref": "VapiApiKeySecret"}
            assert env["API_KEY_ARN_ELEVENLABS"] == {"Ref": "ElevenlabsApiKeySecret"}  # the one its reconcile reads
    # Where ElevenLabs' audio is: the same API its webhook and reconcile name in the recording link.
    globals_env = load()["Globals"]["Function"]["Environment"]["Variables"]
    assert globals_env["CALLVAULT_API_URL_ELEVENLABS"] == {"Ref": "ElevenlabsApiUrl"}
    alarm = load()["Resources"]["RecordingsDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["RecordingsDeadLetterQueue", "QueueName"]}


def test_alarms_watch_5xx_rate_and_every_webhook_functions_throttles() -> None:
    resources = load()["Resources"]
    rate = resources["Api5xxRateAlarm"]["Properties"]["Metrics"]
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in rate if "MetricStat" in m} == {"5xx", "Count"}
    throttle_alarms = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName") == "Throttles"
    ]
    watched = [alarm["Dimensions"][0]["Value"]["Ref"] for alarm in throttle_alarms]
    assert sorted(watched) == sorted({r.function for r in routes() if r.path.startswith("/webhooks/")})
    for name, resource in resources.items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            assert "AlarmActions" in resource["Properties"], name


# The per-vendor alarms are Metrics Insights queries: (metric, the dimensions the code emits it with).
_VENDOR_ALARMS = {"QuarantineGrowthAlarm": "EventsRejected", "RecordingFailuresAlarm": "RecordingsFailed"}


def _query(alarm: str) -> str:
    (metric,) = load()["Resources"][alarm]["Properties"]["Metrics"]
    assert metric["ReturnData"] is True and metric["Period"] > 0
    query: str = metric["Expression"]
    return query


@pytest.mark.parametrize("alarm", sorted(_VENDOR_ALARMS))
def test_per_vendor_alarms_cover_every_vendor(alarm: str) -> None:
    """No vendor is listed, so none is left out: the query sums the metric over every vendor."""
    query = _query(alarm)
    select, _, rest = query.partition(" FROM SCHEMA(callvault, ")
    assert select == f"SELECT SUM({_VENDOR_ALARMS[alarm]})"
    assert "vendor" not in rest.partition(" WHERE ")[2] and "GROUP BY" not in rest


# Each custom alarm: the function that emits its metric, and how its code emits it.
_ALARM_EMITTERS: dict[str, tuple[str, str, Any]] = {
    "QuarantineGrowthAlarm": (
        "CozmoxServerMessagesFunction",
        "EventsRejected",
        lambda o: o.count_rejected("cozmox", "malformed"),
    ),
    "RecordingFailuresAlarm": (
        "RecordingsArchiveFunction",
        "RecordingsFailed",
        lambda o: o.count_with("RecordingsFailed", vendor="vapi"),
    ),
    "ReconcileFailuresAlarm": (
        "ReconcileVapiFunction",
        "ReconcileFailures",
        lambda o: o.count_with("ReconcileFailures", 1, vendor="vapi"),
    ),
    "SessionsStaleAlarm": ("SessionsStaleFunction", "SessionsStale", lambda o: o.count_with("SessionsStale", 2)),
}


def _alarm_dimensions(alarm: str) -> list[str]:
    """The dimension names a custom alarm matches: a Metrics Insights SCHEMA() matches only metrics
    with exactly its keys; a metric alarm only the metric with exactly its Dimensions."""
    import re

    props = load()["Resources"][alarm]["Properties"]
    if "Metrics" in props:
        schema = re.search(r"FROM SCHEMA\(callvault, ([^)]*)\)", _query(alarm))
        assert schema, alarm
        return sorted(schema[1].split(", "))
    assert props["Namespace"] == "callvault"
    return sorted(d["Name"] for d in props.get("Dimensions", []))


@pytest.mark.parametrize("alarm", sorted(_ALARM_EMITTERS))
def test_alarm_dimensions_are_the_ones_the_code_emits(alarm: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Emitted as deployed: in the function, with the template's environment (its
    POWERTOOLS_SERVICE_NAME adds a `service` dimension to whatever carries none)."""
    import json

    from callvault import observability
    from callvault_local import deployed

    function, metric, emit = _ALARM_EMITTERS[alarm]
    capsys.readouterr()
    deployed.wrap(function, lambda event, context: emit(observability))({}, None)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    (directive,) = [e["_aws"]["CloudWatchMetrics"][0] for e in emitted if metric in e]
    assert directive["Namespace"] == "callvault"
    (dimensions,) = directive["Dimensions"]
    assert _alarm_dimensions(alarm) == sorted(dimensions), alarm
    if alarm == "QuarantineGrowthAlarm":
        assert "WHERE reason = 'malformed'" in _query(alarm)
    if "service" in dimensions:
        assert {e["service"] for e in emitted if metric in e} == {"callvault"}


@pytest.mark.parametrize("vendor", ["voiceos", "cozmox", "vapi", "retell", "elevenlabs"])
def test_each_pull_vendor_has_a_scheduled_least_privilege_reconcile_function(vendor: str) -> None:
    from callvault import reconcile

    reconcile.adapter_with_reconciler(vendor)  # the vendor module has a pull API
    resources = load()["Resources"]
    function = resources[f"Reconcile{vendor.capitalize()}Function"]["Properties"]
    assert function["Environment"]["Variables"]["RECONCILE_VENDOR"] == vendor
    assert "ReservedConcurrentExecutions" not in function  # an account's first quota is 10
    (schedule,) = function["Events"].values()
    assert schedule["Type"] == "ScheduleV2" and schedule["Properties"]["ScheduleExpression"] == {"Ref": "ReconcileSchedule"}
    secret = f"{vendor.capitalize()}ApiKeySecret"  # Vapi's: the one its recordings are fetched with too
    assert resources[secret]["Properties"]["SecretString"] == "[]"  # off until the user sets the key
    environment = function["Environment"]["Variables"]
    assert environment["API_KEY_SECRET_ARN"] == {"Ref": secret}
    assert environment["API_URL"] == {"Ref": f"{vendor.capitalize()}ApiUrl"}
    _, reconciler = reconcile.adapter_with_reconciler(vendor)  # the parameter's default is the module's public API
    assert load()["Parameters"][f"{vendor.capitalize()}ApiUrl"]["Default"] == (reconciler.public_url or "")
    assert load()["Outputs"][secret]["Value"] == {"Ref": secret}  # one name: the output is the secret's own
    statements = function["Policies"][0]["Statement"]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {
        "s3:PutObject",
        "s3:DeleteObjectVersion",  # a pulled call erased meanwhile: the version just written
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
        "secretsmanager:GetSecretValue",
    }
    for statement in statements:
        if statement["Action"] == "s3:PutObject":
            assert [r["Fn::Sub"] for r in statement["Resource"]] == [
                f"${{ArchiveBucket.Arn}}/raw/{vendor}/pull/*",
                f"${{ArchiveBucket.Arn}}/quarantine/{vendor}/pull/*",
                f"${{ArchiveBucket.Arn}}/sessions/{vendor}/*",
            ]
        elif statement["Action"] == "s3:DeleteObjectVersion":
            assert [r["Fn::Sub"] for r in statement["Resource"]] == [
                f"${{ArchiveBucket.Arn}}/raw/{vendor}/pull/*",
                f"${{ArchiveBucket.Arn}}/quarantine/{vendor}/pull/*",
            ]
        elif statement["Action"] == "secretsmanager:GetSecretValue":
            assert statement["Resource"] == {"Ref": secret}
        else:
            keys = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            assert keys == [f"{vendor}#*", f"reconcile#{vendor}"]
    alarm = resources["ReconcileFailuresAlarm"]["Properties"]
    assert "SUM(ReconcileFailures)" in alarm["Metrics"][0]["Expression"]  # every vendor, by its dimension
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 3  # repeated failures, not one


def test_vendors_without_a_pull_api_have_no_reconcile_function() -> None:
    from callvault import reconcile, vendors

    functions = {
        r["Properties"]["Environment"]["Variables"].get("RECONCILE_VENDOR")
        for r in resources_of_type("AWS::Serverless::Function").values()
        if "Environment" in r["Properties"]
    }
    for vendor in vendors.known():
        try:
            reconcile.adapter_with_reconciler(vendor)
        except reconcile.ReconcileUnavailable:
            assert vendor not in functions
        else:
            assert vendor in functions


def test_the_stale_count_reads_only_the_by_status_index_and_sessions() -> None:
    function = load()["Resources"]["SessionsStaleFunction"]["Properties"]
    statements = function["Policies"][0]["Statement"]
    assert {s["Action"] for s in statements} == {"dynamodb:Query", "dynamodb:BatchGetItem"}
    (schedule,) = function["Events"].values()
    assert schedule["Type"] == "ScheduleV2"


def _resolved(value: Any, parameters: dict[str, str]) -> Any:
    """`value` with Ref to parameters, Fn::If, Fn::Not and Fn::Equals evaluated as CloudFormation does."""
    template = load()
    if isinstance(value, dict) and len(value) == 1:
        ((name, arg),) = value.items()
        if name == "Ref" and arg in template["Parameters"]:
            return parameters.get(arg, str(template["Parameters"][arg].get("Default")))
        if name == "Fn::Equals":
            return str(_resolved(arg[0], parameters)) == str(_resolved(arg[1], parameters))
        if name == "Fn::Not":
            return not _resolved(arg[0], parameters)
        if name == "Fn::If":
            condition, when_true, when_false = arg
            chosen = when_true if _resolved(template["Conditions"][condition], parameters) else when_false
            return _resolved(chosen, parameters)
    return value


def test_erase_function_has_only_what_erasure_needs() -> None:
    """Reads the session's items and the bodies of its days, deletes object versions under the
    data prefixes, writes tombstones, queues what it could not finish on its own queue (and is
    invoked from it): no UpdateItem, no index, no secret; PutObject only to write the session's
    analytics files again without its rows."""
    (route,) = [r for r in SESSION_ROUTES if r.method == "DELETE"]
    function = load()["Resources"][route.function]
    by_action: dict[str, list[Any]] = {}
    for statement in _statements(function):
        assert statement["Effect"] == "Allow"
        for action in statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]:
            by_action.setdefault(action, []).append(statement)
    assert set(by_action) == {
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:BatchWriteItem",
        "s3:ListBucketVersions",
        "s3:ListBucket",  # so that a version deleted since it was listed reads 404, not 403
        "s3:GetObjectVersion",
        "s3:DeleteObjectVersion",
        "sqs:SendMessage",
        "s3:PutObject",
    }
    (list_bucket,) = by_action["s3:ListBucket"]
    assert list_bucket["Resource"] == {"Fn::GetAtt": ["ArchiveBucket", "Arn"]} and "Condition" not in list_bucket
    (send,) = by_action["sqs:SendMessage"]
    assert send["Resource"] == {"Fn::GetAtt": ["ErasureQueue", "Arn"]}
    (queued,) = [e["Properties"] for e in function["Properties"]["Events"].values() if e["Type"] == "SQS"]
    assert queued["Queue"] == {"Fn::GetAtt": ["ErasureQueue", "Arn"]}
    assert queued["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = load()["Resources"]["ErasureQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * function["Properties"]["Timeout"]  # as Lambda advises for SQS sources
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ErasureDeadLetterQueue", "Arn"]}
    for action in ("dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchWriteItem"):
        (statement,) = by_action[action]
        assert statement["Resource"] == {"Fn::GetAtt": ["SessionsTable", "Arn"]}  # the table, not its indexes

    def prefixes(action: str) -> list[str]:
        (statement,) = by_action[action]
        return sorted(r["Fn::Sub"].split("}/", 1)[1] for r in statement["Resource"])

    assert prefixes("s3:DeleteObjectVersion") == ["analytics/*", "audio/*", "quarantine/*", "raw/*", "sessions/*"]
    assert prefixes("s3:GetObjectVersion") == ["analytics/*", "quarantine/*", "raw/*"]  # to find the bodies that name it
    (put,) = by_action["s3:PutObject"]
    assert put["Resource"] == {"Fn::Sub": "${ArchiveBucket.Arn}/analytics/*"}
    (listing,) = by_action["s3:ListBucketVersions"]
    assert listing["Resource"] == {"Fn::GetAtt": ["ArchiveBucket", "Arn"]}
    assert sorted(listing["Condition"]["StringLike"]["s3:prefix"]) == [
        "analytics/*",
        "audio/*",
        "quarantine/*",
        "raw/*",
        "sessions/*",
    ]
    assert function["Properties"]["Environment"]["Variables"] == {"ERASURE_QUEUE_URL": {"Ref": "ErasureQueue"}}  # no secret


def _resolve(value: Any, parameters: dict[str, str]) -> Any:
    """A template fragment with Ref, Fn::If, Fn::Equals, Fn::And, Fn::Not and Condition evaluated
    for `parameters` (defaults for the others) as CloudFormation does at deploy, AWS::NoValue dropped."""
    conditions = load()["Conditions"]
    parameters = {name: str(p.get("Default")) for name, p in load()["Parameters"].items()} | parameters
    drop = object()

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [w for w in (walk(n) for n in node) if w is not drop]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"}:
            if node["Ref"] == "AWS::NoValue":
                return drop
            return parameters.get(node["Ref"], node)
        if set(node) == {"Fn::Condition"}:  # `!Condition Name`, as the template loader reads it
            return walk(conditions[node["Fn::Condition"]])
        if set(node) == {"Fn::If"}:
            name, then, otherwise = node["Fn::If"]
            return walk(then if walk(conditions[name]) else otherwise)
        if set(node) == {"Fn::Equals"}:
            left, right = (str(walk(n)) for n in node["Fn::Equals"])
            return left == right
        if set(node) == {"Fn::And"}:
            return all(walk(n) for n in node["Fn::And"])
        if set(node) == {"Fn::Not"}:
            return not walk(node["Fn::Not"][0])
        return {k: w for k, w in ((k, walk(v)) for k, v in node.items()) if w is not drop}

    return walk(value)


def _deployed_lifecycle(parameters: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The bucket's lifecycle rules as S3 holds them once deployed with `parameters` (on moto)."""
    import boto3
    from moto import mock_aws

    (bucket,) = resources_of_type("AWS::S3::Bucket").values()
    rules = _resolve(bucket["Properties"]["LifecycleConfiguration"]["Rules"], parameters)
    s3_rules = []
    for rule in rules:  # CloudFormation's rule shape, as CloudFormation sends it to S3
        s3_rule: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
        if "ExpirationInDays" in rule:
            s3_rule["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
        if rule.get("ExpiredObjectDeleteMarker"):
            s3_rule["Expiration"] = {"ExpiredObjectDeleteMarker": True}
        if "NoncurrentVersionExpiration" in rule:
            noncurrent = rule["NoncurrentVersionExpiration"]
            s3_rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(noncurrent["NoncurrentDays"])}
        if "AbortIncompleteMultipartUpload" in rule:
            s3_rule["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
        s3_rules.append(s3_rule)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="lifecycle-check")
        s3.put_bucket_lifecycle_configuration(Bucket="lifecycle-check", LifecycleConfiguration={"Rules": s3_rules})  # type: ignore[typeddict-item]
        deployed: list[dict[str, Any]] = s3.get_bucket_lifecycle_configuration(Bucket="lifecycle-check")["Rules"]  # type: ignore[assignment]
    return {rule["ID"]: rule for rule in deployed}


def test_retention_parameters_become_lifecycle_rules_with_their_values() -> None:
    rules = _deployed_lifecycle({"RawRetentionDays": "30", "RecordingRetentionDays": "90", "TranscriptRetentionDays": "365"})
    expected = {
        "expire-raw-bodies": ("raw/", 30),
        "expire-quarantined-bodies": ("quarantine/", 30),
        "expire-recordings": ("audio/", 90),
        "expire-transcripts": ("sessions/", 365),
    }
    for rule_id, (prefix, days) in expected.items():
        rule = rules[rule_id]
        assert rule["Filter"]["Prefix"] == prefix and rule["Expiration"] == {"Days": days}, rule
        assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1  # the versions expiry leaves behind go too
    assert rules["expired-delete-markers"]["Expiration"] == {"ExpiredObjectDeleteMarker": True}

    kept = _deployed_lifecycle({"RawRetentionDays": "0", "RecordingRetentionDays": "90"})  # 0 keeps for ever
    assert set(kept) == {"abort-incomplete-uploads", "expired-delete-markers", "expire-recordings"}
    held = _deployed_lifecycle({"RawRetentionDays": "30", "RecordingRetentionDays": "90", "LegalHold": "true"})
    assert set(held) == {"abort-incomplete-uploads", "expired-delete-markers"}  # nothing expires under a hold


def test_items_expire_by_ttl_with_the_transcript_retention_unless_held() -> None:
    from callvault import store

    (table,) = resources_of_type("AWS::DynamoDB::Table").values()
    ttl = table["Properties"]["TimeToLiveSpecification"]
    assert ttl["AttributeName"] == store.EXPIRES_ATTR
    assert _resolve(ttl, {"LegalHold": "false"})["Enabled"] is True
    assert _resolve(ttl, {"LegalHold": "true"})["Enabled"] is False
    variable = load()["Globals"]["Function"]["Environment"]["Variables"]["TRANSCRIPT_RETENTION_DAYS"]
    assert _resolve(variable, {"LegalHold": "false", "TranscriptRetentionDays": "365"}) == "365"
    assert _resolve(variable, {"LegalHold": "true", "TranscriptRetentionDays": "365"}) == "0"


def _reserved_concurrency(parameters: dict[str, str]) -> dict[str, int]:
    reserved = {}
    for name, function in resources_of_type("AWS::Serverless::Function").items():
        value = _resolve(function["Properties"], parameters).get("ReservedConcurrentExecutions")
        if value is not None:
            reserved[name] = int(value)
    return reserved


def test_no_concurrency_is_reserved_by_default() -> None:
    # AWS keeps 100 executions unreserved and new accounts often have a quota of 10: any
    # reservation by default would fail `sam deploy` there.
    assert _reserved_concurrency({}) == {}


def test_reserved_concurrency_parameters_reserve_per_function() -> None:
    webhook_functions = {r.function for r in routes() if r.path.startswith("/webhooks/")}
    assert _reserved_concurrency({"WebhookReservedConcurrency": "50"}) == dict.fromkeys(webhook_functions, 50)
    assert _reserved_concurrency({"RecordingsReservedConcurrency": "10"}) == {"RecordingsArchiveFunction": 10}
    parameters = load()["Parameters"]
    for name in ("WebhookReservedConcurrency", "RecordingsReservedConcurrency"):
        assert (parameters[name]["Default"], parameters[name]["MinValue"]) == (0, 0)


def test_schedule_names_do_not_clash_across_stacks() -> None:
    """SAM names a ScheduleV2 schedule `{Function}{Event}` unless told otherwise, and names are
    unique per schedule group: a second stack in the account and region would fail to deploy."""
    schedules = [
        (name, event["Properties"])
        for name, resource in resources_of_type("AWS::Serverless::Function").items()
        for event in resource["Properties"].get("Events", {}).values()
        if event["Type"] == "ScheduleV2"
    ]
    assert len(schedules) >= 6  # five reconcile functions and the stale count
    for function, props in schedules:
        named_per_stack = "AWS::StackName" in str(props.get("Name", ""))
        assert props.get("OmitName") is True or named_per_stack, function
