"""moto, made fit to stand in for DynamoDB under load.

moto's `TransactWriteItems` deep-copies every table it touches before each transaction, so that
it can roll back: each event costs time in proportion to the whole table, and a local run of a
few thousand webhooks slows to seconds per request. `transact_write_items` below keeps DynamoDB's
semantics (all conditions hold, or nothing is written, with one cancellation reason per item)
at a cost in proportion to the transaction: conditions are checked first, then the writes are
applied, and only the items written are saved for a rollback.
"""

from __future__ import annotations

import copy
from typing import Any

_applied = False


def _key_of(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's DynamoDBBackend.transact_write_items, in O(transaction) instead of O(table)."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    planned: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    targets: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")
        key = _key_of(self, op_type, op)
        target = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if target in targets:
            raise MultipleTransactionsException()
        targets.add(target)
        current = self.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        if condition is not None:
            holds = get_filter_expression(condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues"))
            if not holds.expr(current):
                old = (
                    current.to_json()["Attributes"]
                    if current and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                    else None
                )
                errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
                continue
        errors.append((None, None, None))
        planned.append((op_type, op, key))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)

    saved: list[tuple[str, dict[str, Any], Any]] = []
    failed_at = 0  # every condition held, so `planned` is the whole transaction, in order
    try:
        for position, (op_type, op, key) in enumerate(planned):
            failed_at, table_name = position, op["TableName"]
            if op_type == "ConditionCheck":
                continue
            before = self.get_item(table_name, key)
            saved.append((table_name, key, copy.deepcopy(before.to_json()["Attributes"]) if before else None))
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                self.delete_item(table_name, key)
            else:
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
    except Exception as exc:  # an invalid update: undo what was written, then cancel as DynamoDB does
        for table_name, key, attributes in reversed(saved):
            if attributes is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, attributes)
        reasons: list[tuple[str | None, str | None, dict[str, Any] | None]] = [(None, None, None)] * len(transact_items)
        reasons[failed_at] = ("ValidationError", str(exc), None)
        raise TransactionCanceledException(reasons) from exc


def apply() -> None:
    """Install the patches (idempotent): before moto serves, in tests, `make dev` and benchmarks."""
    global _applied
    if _applied:
        return
    from moto.dynamodb.models import DynamoDBBackend

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _applied = True
