"""Create the stack's stateful resources (table, bucket, vendor secrets) from `template.yaml`
in whatever endpoint boto3 points at: moto in tests and in `make dev`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callvault_local.template import resources_of_type

LOCAL_TABLE = "callvault-sessions"
LOCAL_BUCKET = "callvault-archive"


@dataclass(frozen=True)
class LocalStack:
    table_name: str
    bucket_name: str
    secret_arns: dict[str, str]  # vendor -> ARN


_last_created: LocalStack | None = None


def last_created() -> LocalStack | None:
    """The stack `create` made last in this process (what the checked functions' names resolve to)."""
    return _last_created


def _table_spec(name: str) -> dict[str, Any]:
    (props,) = [r["Properties"] for r in resources_of_type("AWS::DynamoDB::Table").values()]
    spec: dict[str, Any] = {
        "TableName": name,
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
    }
    if props.get("GlobalSecondaryIndexes"):
        spec["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if props.get("StreamSpecification"):
        spec["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    return spec


def vendor_of_secret(logical_id: str) -> str:
    """`SpeaknodeSecret` -> `speaknode`: the template names one secret per vendor."""
    return logical_id.removesuffix("Secret").lower()


def local_secret_name(owner: str) -> str:
    """The name a vendor's (or the cursor's) secret has in the local stack."""
    return f"callvault/{owner}"


def create(
    session: Any, *, table_name: str = LOCAL_TABLE, bucket_name: str = LOCAL_BUCKET, secrets: dict[str, str] | None = None
) -> LocalStack:
    """Create table, bucket and one secret per vendor; `secrets` maps vendor to its value."""
    session.client("dynamodb").create_table(**_table_spec(table_name))
    session.client("s3").create_bucket(Bucket=bucket_name)
    session.client("s3").put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": "Enabled"})
    arns = {}
    for logical_id, resource in resources_of_type("AWS::SecretsManager::Secret").items():
        vendor = vendor_of_secret(logical_id)
        # A secret the template gives a fixed value (an empty API key list) starts with it here too.
        value = (secrets or {}).get(vendor, resource["Properties"].get("SecretString", f"dev-{vendor}-secret"))
        arns[vendor] = session.client("secretsmanager").create_secret(Name=local_secret_name(vendor), SecretString=value)["ARN"]
    global _last_created
    _last_created = LocalStack(table_name=table_name, bucket_name=bucket_name, secret_arns=arns)
    return _last_created
