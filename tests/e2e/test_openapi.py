"""The OpenAPI document: generated from the code, current, and true of the running local stack
(schemathesis generates requests from it and checks every answer against it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis import checks

from callvault_local import openapi
from tests.e2e.conftest import RunningStack, started_stack

DOCUMENT = openapi.build()
schema = schemathesis.openapi.from_dict(DOCUMENT)
# What must hold for any request at all: no 5xx, only documented statuses, documented bodies.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def test_committed_document_is_current() -> None:
    assert json.loads(openapi.OUTPUT.read_text()) == DOCUMENT, "docs/openapi.json is stale: run `make openapi`"


def test_document_covers_every_route() -> None:
    from callvault_local.template import routes

    documented = {(method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item}
    assert documented == {(r.method, r.path) for r in routes()}


@pytest.fixture(scope="module")
def api_stack() -> Iterator[RunningStack]:
    with started_stack() as running:
        yield running


@schema.parametrize()
@hypothesis.settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)
def test_local_stack_answers_as_documented(case: Any, api_stack: RunningStack) -> None:
    case.call_and_validate(base_url=api_stack.url, checks=CHECKS)
