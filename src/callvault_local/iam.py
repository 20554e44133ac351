"""IAM, locally: which actions on which resources an AWS API call needs, and whether a role's
identity-based policy statements allow them.

moto answers every call; AWS answers only what the function's role allows. The test harness
(`callvault_local.deployed`) asks `requests_for` what a call needs and `Policy.allows` whether the
template's statements grant it, as AWS documents the evaluation: an explicit Deny wins, else an
Allow whose Action, Resource and every Condition match, else an implicit deny.

Only what the template uses is implemented; anything else raises NotImplementedError rather than
being judged wrongly (an unknown condition operator, an unmapped operation).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

DEFAULT_ACCOUNT = "123456789012"  # moto's account


@dataclass(frozen=True)
class Request:
    """One action on one resource, with the condition keys the request carries."""

    action: str  # service:Action
    resource: str  # ARN
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


# The SQS operations the functions make, and the action each needs (on the queue's ARN).
_SQS_ACTIONS = {
    "SendMessage": "sqs:SendMessage",
    "SendMessageBatch": "sqs:SendMessage",
    "ChangeMessageVisibility": "sqs:ChangeMessageVisibility",
    "ReceiveMessage": "sqs:ReceiveMessage",
    "DeleteMessage": "sqs:DeleteMessage",
}


@cache
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    """An IAM wildcard (`*` any run, `?` one character) as a compiled full-match regex."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _like(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def _listed(value: Any) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    return tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in values)


# Condition operators the template may use: how one request value matches one policy value.
_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda policy, value: policy == value,
    "StringLike": lambda policy, value: _like(policy, value),
    "StringEqualsIgnoreCase": lambda policy, value: policy.lower() == value.lower(),
    "ArnEquals": lambda policy, value: policy == value,
    "ArnLike": lambda policy, value: _like(policy, value),
    "Bool": lambda policy, value: policy.lower() == value.lower(),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition_holds(operator: str, key: str, wanted: tuple[str, ...], context: Mapping[str, tuple[str, ...]]) -> bool:
    """One condition key of one operator, as IAM evaluates it (policy values ORed)."""
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    negated = name in _NEGATED
    base = _NEGATED.get(name, name)
    if base not in _OPERATORS:
        raise NotImplementedError(f"condition operator {operator!r} is not evaluated locally")
    match = _OPERATORS[base]
    # Condition keys are case-insensitive.
    values = next((v for k, v in context.items() if k.lower() == key.lower()), None)

    def one(value: str) -> bool:
        hit = any(match(policy_value, value) for policy_value in wanted)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in values or ())  # no values: true (IAM's documented caveat)
    if qualifier == "ForAnyValue":
        return any(one(v) for v in values or ())
    if qualifier:
        raise NotImplementedError(f"condition qualifier {qualifier!r} is not evaluated locally")
    if values is None:
        return if_exists
    if len(values) != 1:
        return False  # a single-valued operator on a multivalued key
    return one(values[0])


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (operator, key, values)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Statement:
        unsupported = set(raw) - {"Sid", "Effect", "Action", "Resource", "Condition"}
        if unsupported:
            raise NotImplementedError(f"statement elements {sorted(unsupported)} are not evaluated locally")
        if raw["Effect"] not in ("Allow", "Deny"):
            raise ValueError(f"Effect must be Allow or Deny, not {raw['Effect']!r}")
        conditions = tuple(
            (operator, key, _listed(values))
            for operator, keys in (raw.get("Condition") or {}).items()
            for key, values in keys.items()
        )
        for operator, key, values in conditions:
            _condition_holds(operator, key, values, {})  # refuses unknown operators now, not mid-test
        return cls(raw["Effect"], _listed(raw["Action"]), _listed(raw["Resource"]), conditions)

    def applies(self, request: Request) -> bool:
        return (
            any(_like(action, request.action, ignore_case=True) for action in self.actions)
            and any(_like(resource, request.resource) for resource in self.resources)
            and all(_condition_holds(op, key, values, request.context) for op, key, values in self.conditions)
        )


@dataclass(frozen=True)
class Policy:
    """A role's identity-based statements (all its policies together)."""

    statements: tuple[Statement, ...]

    @classmethod
    def parse(cls, statements: Iterable[Mapping[str, Any]]) -> Policy:
        return cls(tuple(Statement.parse(s) for s in statements))

    def allows(self, request: Request) -> bool:
        return self.grant(request) is not None

    def grant(self, request: Request) -> str | None:
        """The resources of the statement that allows `request` (explicit Deny first), else None."""
        applying = [s for s in self.statements if s.applies(request)]
        if not applying or any(s.effect == "Deny" for s in applying):
            return None
        return ", ".join(applying[0].resources)


# ---------------------------------------------------------------- what a call needs


@dataclass(frozen=True)
class Call:
    """One API call as botocore makes it: the service, the operation and its parameters."""

    service: str  # botocore's service name: s3, dynamodb, secretsmanager, sqs
    operation: str
    params: Mapping[str, Any]
    region: str = "us-east-1"
    account: str = DEFAULT_ACCOUNT


@dataclass(frozen=True)
class Needs:
    """What a call needs: every request must be allowed. `missing_object_needs` is the request
    that decides whether a read of a missing object is told 404 (allowed) or 403 (not)."""

    requests: tuple[Request, ...]
    missing_object_needs: Request | None = None


def s3_object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def s3_bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def _object(call: Call, action: str, version_action: str | None = None) -> Request:
    params = call.params
    chosen = version_action if version_action and params.get("VersionId") else action
    return Request(f"s3:{chosen}", s3_object_arn(params["Bucket"], params["Key"]))


def _listing(call: Call, action: str) -> Request:
    params = call.params
    context = {"s3:prefix": (params["Prefix"],)} if "Prefix" in params else {}  # no prefix: the key is absent
    if params.get("Delimiter"):
        context["s3:delimiter"] = (params["Delimiter"],)
    return Request(f"s3:{action}", s3_bucket_arn(params["Bucket"]), context)


def _s3(call: Call) -> Needs:
    op, params = call.operation, call.params
    if op in ("GetObject", "HeadObject"):
        # S3 answers a read of a missing key 404 only to a caller allowed s3:ListBucket; else 403.
        return Needs((_object(call, "GetObject", "GetObjectVersion"),), Request("s3:ListBucket", s3_bucket_arn(params["Bucket"])))
    if op == "PutObject":
        needs = [_object(call, "PutObject")]
        if params.get("Tagging"):
            needs.append(_object(call, "PutObjectTagging"))
        return Needs(tuple(needs))
    if op in ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        needs = [_object(call, "PutObject")]
        if op == "CreateMultipartUpload" and params.get("Tagging"):
            needs.append(_object(call, "PutObjectTagging"))
        return Needs(tuple(needs))
    if op == "AbortMultipartUpload":
        return Needs((_object(call, "AbortMultipartUpload"),))
    if op == "DeleteObject":
        return Needs((_object(call, "DeleteObject", "DeleteObjectVersion"),))
    if op == "DeleteObjects":
        # Authorized per key: s3:DeleteObject, or s3:DeleteObjectVersion for a key given with a version.
        return Needs(
            tuple(
                Request(
                    "s3:DeleteObjectVersion" if item.get("VersionId") else "s3:DeleteObject",
                    s3_object_arn(params["Bucket"], item["Key"]),
                )
                for item in params["Delete"]["Objects"]
            )
        )
    if op == "CopyObject":
        source = params["CopySource"]
        if isinstance(source, str):
            source_bucket, _, source_key = source.lstrip("/").partition("/")
            source = {"Bucket": source_bucket, "Key": source_key.split("?versionId=")[0]}
        read = Request(
            "s3:GetObjectVersion" if source.get("VersionId") else "s3:GetObject", s3_object_arn(source["Bucket"], source["Key"])
        )
        return Needs((_object(call, "PutObject"), read))
    if op in ("PutObjectTagging", "GetObjectTagging"):
        return Needs((_object(call, op, f"{op[:3]}ObjectVersionTagging"),))
    if op == "ListObjectVersions":
        return Needs((_listing(call, "ListBucketVersions"),))
    if op in ("ListObjects", "ListObjectsV2"):
        return Needs((_listing(call, "ListBucket"),))
    if op == "HeadBucket":
        return Needs((Request("s3:ListBucket", s3_bucket_arn(params["Bucket"])),))
    raise NotImplementedError(f"s3 {op}: no IAM mapping")


def table_arn(call: Call, table: str) -> str:
    return f"arn:aws:dynamodb:{call.region}:{call.account}:table/{table}"


KeySchemas = Mapping[str, str]  # table or "table/index/name" -> its partition key attribute


def _leading_key(item_key: Mapping[str, Any], partition_key: str | None) -> tuple[str, ...]:
    if partition_key is None or partition_key not in item_key:
        return ()
    typed = item_key[partition_key]
    return (str(next(iter(typed.values()))),) if isinstance(typed, dict) else (str(typed),)


def _query_leading_key(params: Mapping[str, Any], partition_key: str | None) -> tuple[str, ...]:
    """The partition key value a Query names in its KeyConditionExpression (`#pk = :v`)."""
    expression = params.get("KeyConditionExpression")
    if partition_key is None or not isinstance(expression, str):
        return ()
    names = params.get("ExpressionAttributeNames") or {}
    values = params.get("ExpressionAttributeValues") or {}
    for name, value in re.findall(r"([#\w.]+)\s*=\s*(:\w+)", expression):
        if names.get(name, name) == partition_key and value in values:
            return _leading_key({partition_key: values[value]}, partition_key)
    return ()


def _dynamodb(call: Call, key_schemas: KeySchemas) -> Needs:
    op, params = call.operation, call.params

    def item(action: str, table: str, key: Mapping[str, Any]) -> Request:
        leading = _leading_key(key, key_schemas.get(table))
        return Request(f"dynamodb:{action}", table_arn(call, table), {"dynamodb:LeadingKeys": leading})

    if op in ("GetItem", "DeleteItem", "UpdateItem"):
        return Needs((item(op, params["TableName"], params["Key"]),))
    if op == "PutItem":
        return Needs((item(op, params["TableName"], params["Item"]),))
    if op in ("Query", "Scan"):
        table = params["TableName"]
        target = f"{table}/index/{params['IndexName']}" if params.get("IndexName") else table
        context = {"dynamodb:LeadingKeys": _query_leading_key(params, key_schemas.get(target))} if op == "Query" else {}
        return Needs((Request(f"dynamodb:{op}", table_arn(call, target), context),))
    if op == "BatchGetItem":
        return Needs(
            tuple(
                Request(
                    "dynamodb:BatchGetItem",
                    table_arn(call, table),
                    {"dynamodb:LeadingKeys": tuple(v for key in spec["Keys"] for v in _leading_key(key, key_schemas.get(table)))},
                )
                for table, spec in params["RequestItems"].items()
            )
        )
    if op == "BatchWriteItem":
        return Needs(
            tuple(
                Request(
                    "dynamodb:BatchWriteItem",
                    table_arn(call, table),
                    {
                        "dynamodb:LeadingKeys": tuple(
                            v
                            for write in writes
                            for v in _leading_key(
                                write.get("PutRequest", {}).get("Item") or write.get("DeleteRequest", {}).get("Key") or {},
                                key_schemas.get(table),
                            )
                        )
                    },
                )
                for table, writes in params["RequestItems"].items()
            )
        )
    if op == "TransactWriteItems":
        # Authorized per item, by the action the item performs.
        actions = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
        needs = []
        for entry in params["TransactItems"]:
            ((kind, spec),) = entry.items()
            needs.append(item(actions[kind], spec["TableName"], spec.get("Key") or spec.get("Item") or {}))
        return Needs(tuple(needs))
    if op == "TransactGetItems":
        return Needs(tuple(item("GetItem", e["Get"]["TableName"], e["Get"]["Key"]) for e in params["TransactItems"]))
    if op in ("DescribeTable", "DescribeTimeToLive"):
        return Needs((Request(f"dynamodb:{op}", table_arn(call, params["TableName"])),))
    raise NotImplementedError(f"dynamodb {op}: no IAM mapping")


def requests_for(call: Call, key_schemas: KeySchemas, secret_arns: Mapping[str, str]) -> Needs:
    """What `call` must be allowed. `key_schemas` names each table's (and index's) partition key
    (for dynamodb:LeadingKeys); `secret_arns` maps a secret's name to its ARN (IAM checks the ARN
    whichever the caller passes)."""
    if call.service == "s3":
        return _s3(call)
    if call.service == "dynamodb":
        return _dynamodb(call, key_schemas)
    if call.service == "secretsmanager" and call.operation in ("GetSecretValue", "DescribeSecret"):
        secret = call.params["SecretId"]
        arn = (
            secret
            if secret.startswith("arn:")
            else secret_arns.get(secret, f"arn:aws:secretsmanager:{call.region}:{call.account}:secret:{secret}")
        )
        return Needs((Request(f"secretsmanager:{call.operation}", arn),))
    if call.service == "sqs" and call.operation in _SQS_ACTIONS:
        name = call.params["QueueUrl"].rstrip("/").rsplit("/", 1)[1]
        return Needs((Request(_SQS_ACTIONS[call.operation], f"arn:aws:sqs:{call.region}:{call.account}:{name}"),))
    if call.service == "events" and call.operation == "PutEvents":
        # Each entry names its bus (a name or an ARN; none: the account's default bus).
        buses = {entry.get("EventBusName") or "default" for entry in call.params.get("Entries", [])}
        return Needs(
            tuple(
                Request(
                    "events:PutEvents",
                    bus if bus.startswith("arn:") else f"arn:aws:events:{call.region}:{call.account}:event-bus/{bus}",
                )
                for bus in sorted(buses)
            )
        )
    raise NotImplementedError(f"{call.service} {call.operation}: no IAM mapping")
