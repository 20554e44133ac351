"""The local stack's DynamoDB transactions keep DynamoDB's all-or-nothing rule (moto_patches)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from callvault_local.stack import LocalStack


def _put(table: str, pk: str) -> Any:
    return {"Put": {"TableName": table, "Item": {"pk": {"S": pk}, "sk": {"S": "x"}, "n": {"S": "text"}}}}


def test_a_failed_condition_writes_nothing_and_names_the_item(local_stack: LocalStack) -> None:
    client, table = boto3.client("dynamodb"), local_stack.table_name
    client.transact_write_items(TransactItems=[_put(table, "a")])
    guarded = _put(table, "a")
    guarded["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=[_put(table, "b"), guarded])
    reasons = [r["Code"] for r in raised.value.response["CancellationReasons"]]
    assert reasons == ["None", "ConditionalCheckFailed"]
    assert "Item" not in client.get_item(TableName=table, Key={"pk": {"S": "b"}, "sk": {"S": "x"}})


def test_an_invalid_update_rolls_back_the_writes_before_it(local_stack: LocalStack) -> None:
    client, table = boto3.client("dynamodb"), local_stack.table_name
    client.transact_write_items(TransactItems=[_put(table, "c")])
    bad_update: Any = {
        "Update": {
            "TableName": table,
            "Key": {"pk": {"S": "c"}, "sk": {"S": "x"}},
            "UpdateExpression": "ADD n :one",  # n is a string: ADD fails
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }
    with pytest.raises(ClientError):
        client.transact_write_items(TransactItems=[_put(table, "d"), bad_update])
    assert "Item" not in client.get_item(TableName=table, Key={"pk": {"S": "d"}, "sk": {"S": "x"}})
    assert client.get_item(TableName=table, Key={"pk": {"S": "c"}, "sk": {"S": "x"}})["Item"]["n"] == {"S": "text"}
