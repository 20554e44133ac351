"""The local IAM evaluator (callvault_local.iam) and the harness that runs functions as deployed
(callvault_local.deployed): what a call needs, and whether a policy allows it."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from callvault_local import deployed, iam
from callvault_local.iam import Call, Policy, Request

BUCKET = "arn:aws:s3:::bucket"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/t"


def policy(*statements: dict[str, Any]) -> Policy:
    return Policy.parse(statements)


def needs(service: str, operation: str, **params: Any) -> tuple[Request, ...]:
    return iam.requests_for(Call(service, operation, params), {"t": "pk", "t/index/by-vendor": "vendor"}, {}).requests


def test_allowed_refused_and_wildcards() -> None:
    allow = policy({"Effect": "Allow", "Action": "s3:Put*", "Resource": f"{BUCKET}/raw/?ozmox/*"})
    assert allow.allows(Request("s3:PutObject", f"{BUCKET}/raw/cozmox/a/b.json"))
    assert allow.allows(Request("S3:putobject", f"{BUCKET}/raw/cozmox/x"))  # actions are case-insensitive
    assert not allow.allows(Request("s3:PutObject", f"{BUCKET}/RAW/cozmox/x"))  # resources are not
    assert not allow.allows(Request("s3:GetObject", f"{BUCKET}/raw/cozmox/x"))  # implicit deny
    assert not allow.allows(Request("s3:PutObject", f"{BUCKET}/raw/vapi/x"))


def test_explicit_deny_wins() -> None:
    both = policy(
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:DeleteObjectVersion", "Resource": f"{BUCKET}/audio/*"},
    )
    assert both.allows(Request("s3:DeleteObjectVersion", f"{BUCKET}/raw/x"))
    assert not both.allows(Request("s3:DeleteObjectVersion", f"{BUCKET}/audio/x"))


def test_prefix_condition_on_a_listing() -> None:
    listing = policy(
        {
            "Effect": "Allow",
            "Action": "s3:ListBucketVersions",
            "Resource": BUCKET,
            "Condition": {"StringLike": {"s3:prefix": ["raw/*", "audio/*"]}},
        }
    )
    (inside,) = needs("s3", "ListObjectVersions", Bucket="bucket", Prefix="audio/vapi/")
    (outside,) = needs("s3", "ListObjectVersions", Bucket="bucket", Prefix="sessions/")
    (unprefixed,) = needs("s3", "ListObjectVersions", Bucket="bucket")
    assert listing.allows(inside)
    assert not listing.allows(outside)
    assert not listing.allows(unprefixed)  # no prefix: the key is absent, StringLike fails
    (as_list_bucket,) = needs("s3", "ListObjectsV2", Bucket="bucket", Prefix="raw/")
    assert as_list_bucket.action == "s3:ListBucket" and not listing.allows(as_list_bucket)


def test_leading_keys_condition() -> None:
    own = policy(
        {
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"],
            "Resource": [TABLE, f"{TABLE}/index/*"],
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["cozmox#*"]}},
        }
    )
    assert own.allows(*needs("dynamodb", "GetItem", TableName="t", Key={"pk": {"S": "cozmox#1"}, "sk": {"S": "SESSION"}}))
    assert not own.allows(*needs("dynamodb", "GetItem", TableName="t", Key={"pk": {"S": "vapi#1"}, "sk": {"S": "SESSION"}}))
    query = {
        "TableName": "t",
        "IndexName": "by-vendor",
        "KeyConditionExpression": "#v = :v",
        "ExpressionAttributeNames": {"#v": "vendor"},
    }
    assert own.allows(*needs("dynamodb", "Query", **query, ExpressionAttributeValues={":v": {"S": "cozmox#x"}}))
    assert not own.allows(*needs("dynamodb", "Query", **query, ExpressionAttributeValues={":v": {"S": "vapi"}}))
    keys = [{"pk": {"S": "cozmox#1"}, "sk": {"S": "SESSION"}}, {"pk": {"S": "vapi#2"}, "sk": {"S": "SESSION"}}]
    assert not own.allows(*needs("dynamodb", "BatchGetItem", RequestItems={"t": {"Keys": keys}}))  # every key must match
    assert own.allows(*needs("dynamodb", "BatchGetItem", RequestItems={"t": {"Keys": keys[:1]}}))


def test_transactions_need_the_action_of_each_item() -> None:
    put_only = policy({"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE})
    items = [
        {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}},
        {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "a"}}, "ConditionExpression": "x"}},
    ]
    put, check = needs("dynamodb", "TransactWriteItems", TransactItems=items)
    assert (put.action, check.action) == ("dynamodb:PutItem", "dynamodb:ConditionCheckItem")
    assert put_only.allows(put) and not put_only.allows(check)


def test_what_s3_calls_need() -> None:
    (read_version,) = needs("s3", "GetObject", Bucket="bucket", Key="raw/a", VersionId="v1")
    assert read_version == Request("s3:GetObjectVersion", f"{BUCKET}/raw/a")
    tagged = needs("s3", "PutObject", Bucket="bucket", Key="k", Body=b"", Tagging="a=b")
    assert [r.action for r in tagged] == ["s3:PutObject", "s3:PutObjectTagging"]
    deletes = needs("s3", "DeleteObjects", Bucket="bucket", Delete={"Objects": [{"Key": "a", "VersionId": "v"}, {"Key": "b"}]})
    assert [(r.action, r.resource) for r in deletes] == [
        ("s3:DeleteObjectVersion", f"{BUCKET}/a"),
        ("s3:DeleteObject", f"{BUCKET}/b"),
    ]
    assert needs("s3", "UploadPart", Bucket="bucket", Key="k", UploadId="u", PartNumber=1)[0].action == "s3:PutObject"
    with pytest.raises(NotImplementedError):
        needs("s3", "PutBucketPolicy", Bucket="bucket", Policy="{}")


def test_head_object_of_a_missing_key_needs_list_bucket_to_be_404() -> None:
    decided = iam.requests_for(Call("s3", "HeadObject", {"Bucket": "bucket", "Key": "audio/x"}), {}, {})
    assert decided.requests == (Request("s3:GetObject", f"{BUCKET}/audio/x"),)
    assert decided.missing_object_needs == Request("s3:ListBucket", BUCKET)


def test_unknown_condition_operators_are_refused_at_parse() -> None:
    with pytest.raises(NotImplementedError):
        policy(
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "*",
                "Condition": {"DateGreaterThan": {"aws:CurrentTime": "x"}},
            }
        )


def test_a_functions_policy_is_the_templates_resolved_to_the_local_stack() -> None:
    read = deployed.deployed("SessionsReadFunction", deployed.LocalNames(table="t", bucket="bucket"))
    assert read.variables["TABLE_NAME"] == "t" and read.variables["BUCKET_NAME"] == "bucket"
    assert read.variables["POWERTOOLS_SERVICE_NAME"] == "callvault"
    assert read.policy.allows(Request("s3:GetObject", f"{BUCKET}/raw/vapi/x"))
    assert not read.policy.allows(Request("s3:PutObject", f"{BUCKET}/raw/vapi/x"))
    audio = deployed.deployed("ElevenlabsPostCallFunction", deployed.LocalNames(bucket="bucket"))
    assert audio.policy.allows(Request("s3:GetObject", f"{BUCKET}/audio/elevenlabs/x"))  # its AWS::IAM::Policy too


def _head_as(function: str, key: str) -> None:
    """HEAD `key` in a handler of `function` (what the function's own code would do)."""

    def handler(event: Any, context: Any) -> None:
        boto3.client("s3").head_object(Bucket="callvault-archive", Key=key)

    deployed.wrap(function, handler)({}, None)


def test_a_refused_call_is_answered_as_aws_answers_and_recorded() -> None:
    with mock_aws():
        from callvault_local import stack

        stack.create(boto3.Session())
        boto3.client("s3").put_object(Bucket="callvault-archive", Key="raw/vapi/x", Body=b"1")
        # The read function may GetObject raw/, not quarantine/; and without s3:ListBucket a missing key is 403.
        _head_as("SessionsReadFunction", "raw/vapi/x")
        assert deployed.take_refusals() == []
        for key in ("quarantine/vapi/x", "raw/vapi/missing"):
            with pytest.raises(ClientError) as refused:
                _head_as("SessionsReadFunction", key)
            assert refused.value.response["Error"]["Code"] == "403"
        taken = deployed.take_refusals()
        assert [(r.action, r.resource) for r in taken] == [
            ("s3:GetObject", "arn:aws:s3:::callvault-archive/quarantine/vapi/x"),
            ("s3:ListBucket", "arn:aws:s3:::callvault-archive"),
        ]
        # Outside any function (the test's own setup and assertions) nothing is checked.
        with pytest.raises(ClientError) as missing:
            boto3.client("s3").head_object(Bucket="callvault-archive", Key="raw/vapi/missing")
        assert missing.value.response["Error"]["Code"] == "404" and deployed.take_refusals() == []


def test_a_function_sees_its_own_environment_only() -> None:
    import os

    seen: dict[str, dict[str, str | None]] = {}

    def handler_of(function: str) -> Any:
        def handler(event: Any, context: Any) -> None:
            seen[function] = {
                n: os.environ.get(n)
                for n in ("SECRET_ARN", "RECONCILE_VENDOR", "POWERTOOLS_SERVICE_NAME", "CALLVAULT_SECRET_VAPI")
            }

        return deployed.wrap(function, handler)

    os.environ["CALLVAULT_SECRET_VAPI"] = "local"
    try:
        handler_of("VapiServerMessagesFunction")({}, None)
        handler_of("ReconcileVapiFunction")({}, None)
    finally:
        del os.environ["CALLVAULT_SECRET_VAPI"]
    assert seen["VapiServerMessagesFunction"]["SECRET_ARN"], "the template's SECRET_ARN"
    assert seen["VapiServerMessagesFunction"]["RECONCILE_VENDOR"] is None
    assert seen["ReconcileVapiFunction"] == {
        "SECRET_ARN": None,
        "RECONCILE_VENDOR": "vapi",
        "POWERTOOLS_SERVICE_NAME": "callvault",
        "CALLVAULT_SECRET_VAPI": None,
    }
    assert "RECONCILE_VENDOR" not in os.environ


def test_only_the_templates_handlers_are_checked_and_only_by_their_logical_id(tmp_path: Any) -> None:
    reconcile = deployed.functions()["ReconcileVoiceosFunction"].code_uri
    assert deployed.checks("ReconcileVoiceosFunction", reconcile)
    with pytest.raises(KeyError, match="logical id"):
        deployed.checks("reconcile", reconcile)  # the template's code under a folder name: no unchecked run
    assert not deployed.checks("EchoFunction", tmp_path)  # another template's handler
