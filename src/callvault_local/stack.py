"""The local stack: its resources' names, its stateful resources (table, bucket, vendor secrets)
created from `template.yaml` in whatever endpoint boto3 points at (moto in tests and in `make dev`),
and the environment that points callvault's code at it (`configure_environment`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from callvault_local.template import resources_of_type

LOCAL_TABLE = "callvault-sessions"
LOCAL_BUCKET = "callvault-archive"
LOCAL_REGION = "us-east-1"
# The events out's bus and queues as `make dev` makes them (callvault_local.bus).
LOCAL_BUS = "callvault-events"
WATCH_QUEUE = "callvault-events-watch"
# The template's queues, named by their logical ids (queues.py).
NOTIFY_QUEUE = "NotifyQueue"
NOTIFY_DEAD_LETTER_QUEUE = "NotifyDeadLetterQueue"


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


def local_vendors() -> list[str]:
    """Every vendor callvault has an adapter for."""
    from callvault import vendors

    return sorted(vendors.known())


def local_secrets(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Each vendor's secrets as configured for the local run: `CALLVAULT_SECRET_<VENDOR>` or `dev-<vendor>-secret`."""
    return {v: environ.get(f"CALLVAULT_SECRET_{v.upper()}") or f"dev-{v}-secret" for v in local_vendors()}


def configure_environment(moto_port: int, environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Point boto3 and the handlers at the local moto endpoint, with local names and secrets."""
    for name in ("AWS_PROFILE", "SECRET_ARN"):
        environ.pop(name, None)
    environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{moto_port}",
        AWS_ACCESS_KEY_ID="callvault-local",
        AWS_SECRET_ACCESS_KEY="callvault-local",  # noqa: S106 - moto accepts any credentials  # nosec B106
        AWS_DEFAULT_REGION=environ.get("AWS_DEFAULT_REGION", LOCAL_REGION),
        TABLE_NAME=LOCAL_TABLE,
        BUCKET_NAME=LOCAL_BUCKET,
    )
    environ.pop("AWS_SESSION_TOKEN", None)
    # A local file server may stand in for a vendor's media host (private addresses stay refused).
    environ.setdefault("RECORDING_ALLOW_LOOPBACK", "true")
    environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")  # one line per request instead; POWERTOOLS_LOG_LEVEL=INFO for more
    for vendor, value in local_secrets(environ).items():
        environ[f"CALLVAULT_SECRET_{vendor.upper()}"] = value
    environ.setdefault("CALLVAULT_SECRET_CURSOR", "dev-cursor-secret")  # signs the read API's cursors
