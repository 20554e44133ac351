"""docs/events/: the events' JSON Schemas, generated from the models, committed current."""

from __future__ import annotations

import json

import pytest

from callvault import outbound
from callvault_local import event_schemas

DOCUMENTS = event_schemas.build()


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_committed_schema_is_current(name: str) -> None:
    committed = event_schemas.OUTPUT / name
    assert committed.exists() and json.loads(committed.read_text()) == DOCUMENTS[name], (
        f"docs/events/{name} is stale: run `make event-schemas`"
    )


def test_no_schema_is_left_over() -> None:
    assert sorted(p.name for p in event_schemas.OUTPUT.glob("*.json")) == sorted(DOCUMENTS)


def test_one_schema_per_detail_type_and_erased_names_no_more_than_the_session() -> None:
    assert {d["title"] for n, d in DOCUMENTS.items() if n != "webhook.json"} == set(outbound.DETAIL_TYPES.values())
    erased = DOCUMENTS["call-erased.json"]["$defs"]["CallErased"]
    assert set(erased["properties"]) == {"id", "type", "vendor", "session_id"} and erased["additionalProperties"] is False
