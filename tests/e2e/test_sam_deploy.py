"""`sam build` and `sam deploy` of template.yaml into a moto server, as into a fresh account.

moto stands in for CloudFormation with callvault_local.moto_cloudformation (the SAM transform,
the outputs after a change set, the HTTP API and secrets; its docstring says what the test reads
from moto's API and what from the processed template). No network: `sam build` installs the
layer's wheels from the wheelhouse `make test` prepares (`make wheelhouse`), and SAM CLI's weekly
version check is recorded as done in a metadata file of its own.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from callvault_local import moto_cloudformation
from callvault_local.dev import start_moto
from callvault_local.template import ROOT, load, routes

STACK = "callvault"
REGION = "us-east-1"
ARTIFACTS = "callvault-deploy-artifacts"
WHEELHOUSE = ROOT / ".tools" / "wheelhouse"
READ_AUTHORIZATION = "AWS_IAM"  # the read routes are SigV4; webhooks authenticate themselves

pytestmark = pytest.mark.filterwarnings("ignore")  # moto warns for each resource type it does not create


def _sam_path() -> str:
    """PATH with python3.13 on it, found as the Makefile finds it (pyenv's 3.13 first)."""
    pyenv = sorted(Path.home().glob(".pyenv/versions/3.13*/bin"))
    path = os.pathsep.join([str(p) for p in pyenv[-1:]] + [os.environ.get("PATH", "")])
    if shutil.which("python3.13", path=path) is None:
        pytest.fail("python3.13 is not on PATH (nor in ~/.pyenv/versions): `sam build` needs it for the python3.13 layer")
    return path


def _environment(tmp_path: Path, endpoint: str) -> dict[str, str]:
    sam_dir = tmp_path / "sam-cli"
    sam_dir.mkdir()
    (sam_dir / "metadata.json").write_text(json.dumps({"telemetryEnabled": False, "lastVersionCheck": time.time()}))
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIP_"))}
    return {
        **kept,
        "PATH": _sam_path(),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "deploy-test",
        "AWS_SECRET_ACCESS_KEY": "deploy-test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "SAM_CLI_TELEMETRY": "0",
        "__SAM_CLI_APP_DIR": str(sam_dir),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


def _sam(args: list[str], env: dict[str, str], cwd: Path) -> None:
    sam = str(Path(sys.executable).parent / "sam")
    result = subprocess.run([sam, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"sam {args[0]} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


def _client(endpoint: str, service: Any) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


@dataclass
class Deployed:
    endpoint: str
    stack: Any  # DescribeStacks' answer for the stack
    physical: dict[str, str]  # logical id -> physical id, as CloudFormation lists them
    processed: dict[str, Any]  # the template after its transforms (GetTemplate, TemplateStage=Processed)

    def client(self, service: Any) -> Any:
        return _client(self.endpoint, service)

    def resolve(self, value: Any) -> Any:
        """A template value (Ref, Fn::Sub) as CloudFormation resolves it in this stack."""
        if isinstance(value, dict) and "Ref" in value:
            name = value["Ref"]
            parameter = load()["Parameters"].get(name)
            return str(parameter["Default"]) if parameter else self.physical[name]
        if isinstance(value, dict) and "Fn::Sub" in value:
            known = {"AWS::Region": REGION, "AWS::URLSuffix": "amazonaws.com", **self.physical}
            return re.sub(r"\$\{([^}]+)\}", lambda m: known[m.group(1)], value["Fn::Sub"])
        if isinstance(value, dict) and "Fn::If" in value:
            condition, when_true, when_false = value["Fn::If"]
            return self.resolve(when_true if self.holds(load()["Conditions"][condition]) else when_false)
        return value

    def holds(self, condition: Any) -> bool:
        """A template condition, with every parameter at its default (as the test deploys)."""
        for key in ("Condition", "Fn::Condition"):  # `!Condition X` as the template loader reads it: Fn::Condition
            if key in condition:
                return self.holds(load()["Conditions"][condition[key]])
        (function, args), *_ = condition.items()
        if function == "Fn::Equals":
            return bool(str(self.resolve(args[0])) == str(self.resolve(args[1])))
        if function == "Fn::Not":
            return not self.holds(args[0])
        if function == "Fn::And":
            return all(self.holds(arg) for arg in args)
        if function == "Fn::Or":
            return any(self.holds(arg) for arg in args)
        raise AssertionError(f"condition function {function} not handled by the test")


def _build_and_deploy(tmp_path: Path, endpoint: str) -> Deployed:
    """`sam build` into tmp_path, then `sam deploy` as a user does: defaults, CAPABILITY_IAM, samconfig.toml."""
    env = _environment(tmp_path, endpoint)
    build = tmp_path / "build"
    template = str(ROOT / "template.yaml")
    _sam(["build", "--template-file", template, "--build-dir", str(build), "--cache-dir", str(tmp_path / "cache")], env, ROOT)
    _client(endpoint, "s3").create_bucket(Bucket=ARTIFACTS)
    deploy = ["deploy", "--config-file", str(ROOT / "samconfig.toml"), "--template-file", str(build / "template.yaml")]
    deploy += ["--stack-name", STACK, "--region", REGION, "--s3-bucket", ARTIFACTS, "--capabilities", "CAPABILITY_IAM"]
    _sam([*deploy, "--no-confirm-changeset", "--no-progressbar"], env, tmp_path)
    cfn = _client(endpoint, "cloudformation")
    resources = cfn.describe_stack_resources(StackName=STACK)["StackResources"]
    return Deployed(
        endpoint=endpoint,
        stack=cfn.describe_stacks(StackName=STACK)["Stacks"][0],
        physical={r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources if r.get("PhysicalResourceId")},
        processed=cfn.get_template(StackName=STACK, TemplateStage="Processed")["TemplateBody"],
    )


def test_stack_deploys_into_a_fresh_account(tmp_path: Path) -> None:
    if not (WHEELHOUSE / ".ready").is_file():
        pytest.fail(f"no wheelhouse at {WHEELHOUSE}: run `make wheelhouse` (it downloads the layer's wheels once)")
    moto_cloudformation.apply()
    server, port = start_moto(0)
    try:
        deployed = _build_and_deploy(tmp_path, f"http://127.0.0.1:{port}")
        assert deployed.stack["StackStatus"] == "CREATE_COMPLETE"
        _assert_outputs(deployed)
        _assert_routes(deployed)
        _assert_table(deployed)
        _assert_stream_mapping(deployed)
        _assert_functions_and_layer(deployed)
    finally:
        server.shutdown()
        server.server_close()


def _assert_outputs(deployed: Deployed) -> None:
    outputs = {o["OutputKey"]: o["OutputValue"] for o in deployed.stack["Outputs"]}
    conditions = load()["Conditions"]
    declared = {k: o for k, o in load()["Outputs"].items() if "Condition" not in o or deployed.holds(conditions[o["Condition"]])}
    assert set(outputs) == set(declared)
    for key, output in declared.items():
        assert outputs[key] == deployed.resolve(output["Value"]), key
    (api,) = deployed.client("apigatewayv2").get_apis()["Items"]
    assert outputs["ApiUrl"] == f"https://{api['ApiId']}.execute-api.{REGION}.amazonaws.com"
    # each named thing exists in its service
    assert deployed.client("dynamodb").describe_table(TableName=outputs["SessionsTableName"])
    deployed.client("s3").head_bucket(Bucket=outputs["ArchiveBucketName"])
    assert deployed.client("sqs").get_queue_attributes(QueueUrl=outputs["RecordingsDeadLetterQueueUrl"])
    secrets = deployed.client("secretsmanager")
    for key in [k for k in outputs if k.endswith("Secret")]:
        assert secrets.describe_secret(SecretId=outputs[key])["ARN"] == outputs[key]


def _assert_routes(deployed: Deployed) -> None:
    gateway = deployed.client("apigatewayv2")
    (api,) = gateway.get_apis()["Items"]
    served = {r["RouteKey"]: r for r in gateway.get_routes(ApiId=api["ApiId"])["Items"]}
    integrations = {i["IntegrationId"]: i for i in gateway.get_integrations(ApiId=api["ApiId"])["Items"]}
    declared = routes()
    assert set(served) == {f"{r.method} {r.path}" for r in declared}
    for route in declared:
        answer = served[f"{route.method} {route.path}"]
        expected = READ_AUTHORIZATION if route.path.startswith("/sessions") else "NONE"
        assert answer["AuthorizationType"] == expected, route.path
        integration = integrations[answer["Target"].removeprefix("integrations/")]
        assert (integration["IntegrationType"], integration["PayloadFormatVersion"]) == ("aws_proxy", "2.0")
        assert f":function:{deployed.physical[route.function]}/invocations" in integration["IntegrationUri"], route.path
    # moto creates no stage: its throttling and access logs are read from the processed template
    (stage,) = [r["Properties"] for r in deployed.processed["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert stage["StageName"] == "$default" and stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "WebhookThrottleRate"},
        "ThrottlingBurstLimit": {"Ref": "WebhookThrottleBurst"},
    }
    assert stage["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogs", "Arn"]}


def _assert_table(deployed: Deployed) -> None:
    from callvault import store

    table = deployed.client("dynamodb").describe_table(TableName=deployed.physical["SessionsTable"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST" and table["DeletionProtectionEnabled"] is True
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {name for name, _ in store.INDEXES.values()}
    for index_name, partition_attr in store.INDEXES.values():
        assert indexes[index_name]["KeySchema"] == [
            {"AttributeName": partition_attr, "KeyType": "HASH"},
            {"AttributeName": store.LIST_SK_ATTR, "KeyType": "RANGE"},
        ]
        assert indexes[index_name]["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def _assert_stream_mapping(deployed: Deployed) -> None:
    function = deployed.physical["RecordingsArchiveFunction"]
    (mapping,) = deployed.client("lambda").list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
    table = deployed.client("dynamodb").describe_table(TableName=deployed.physical["SessionsTable"])["Table"]
    queue_url = deployed.physical["RecordingsDeadLetterQueue"]
    queue_arn = deployed.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    declared = load()["Resources"]["RecordingsArchiveFunction"]["Properties"]["Events"]["PendingRecordings"]["Properties"]
    assert mapping["EventSourceArn"] == table["LatestStreamArn"]
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": queue_arn}}
    assert mapping["FilterCriteria"] == declared["FilterCriteria"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and mapping["BisectBatchOnFunctionError"] is True
    for setting in (
        "StartingPosition",
        "BatchSize",
        "ParallelizationFactor",
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
    ):
        assert mapping[setting] == declared[setting], setting


def _assert_functions_and_layer(deployed: Deployed) -> None:
    lambda_ = deployed.client("lambda")
    # Two layers: callvault's (every function) and DuckDB's (the functions writing the analytics dataset).
    (layer_id,) = [
        name
        for name, r in deployed.processed["Resources"].items()
        if r["Type"] == "AWS::Lambda::LayerVersion" and name.startswith("CallvaultLayer")
    ]
    versions = {}
    for listed in lambda_.list_layers()["Layers"]:
        (versions[listed["LayerName"]],) = lambda_.list_layer_versions(LayerName=listed["LayerName"])["LayerVersions"]
    (layer,) = [v for name, v in versions.items() if "analytics" not in name.lower()]
    (analytics_layer,) = [v for name, v in versions.items() if "analytics" in name.lower()]
    layer_arn = layer["LayerVersionArn"]
    assert layer["CompatibleArchitectures"] == ["arm64"] and layer["CompatibleRuntimes"] == ["python3.13"]
    # the layer as uploaded: the callvault package, with pydantic's compiled core built for Lambda's arm64
    content = deployed.processed["Resources"][layer_id]["Properties"]["Content"]
    archive = deployed.client("s3").get_object(Bucket=content["S3Bucket"], Key=content["S3Key"])["Body"].read()
    names = zipfile.ZipFile(io.BytesIO(archive)).namelist()
    assert "python/callvault/ingest.py" in names
    assert any(re.fullmatch(r"python/pydantic_core/_pydantic_core\.cpython-313-aarch64-linux-gnu\.so", n) for n in names)

    template = load()
    global_env = template["Globals"]["Function"]["Environment"]["Variables"]
    functions = {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    conditions = template["Conditions"]
    for name, function in functions.items():
        if "Condition" in function and not deployed.holds(conditions[function["Condition"]]):
            assert name not in deployed.physical, name  # off by default: not created
            continue
        answer = lambda_.get_function(FunctionName=deployed.physical[name])
        configuration = answer["Configuration"]
        assert configuration["Runtime"] == "python3.13", name
        assert configuration["Architectures"] == ["arm64"], name
        extra = (
            [analytics_layer["LayerVersionArn"]] if {"Ref": "AnalyticsLayer"} in function["Properties"].get("Layers", []) else []
        )
        assert [layer["Arn"] for layer in configuration["Layers"]] == [layer_arn, *extra], name
        declared = {**global_env, **function["Properties"].get("Environment", {}).get("Variables", {})}
        expected = {key: str(deployed.resolve(value)) for key, value in declared.items()}
        assert {k: str(v) for k, v in configuration["Environment"]["Variables"].items()} == expected, name
        assert "Concurrency" not in answer, name  # nothing reserved by default (a fresh account allows none)
