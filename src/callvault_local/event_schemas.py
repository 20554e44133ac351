"""docs/events/*.json: the JSON Schema of each event callvault puts on its bus, and of the
outbound webhook's body, generated from the models in callvault/outbound.py (`make event-schemas`;
tests/unit/test_event_schemas.py checks the committed files are current).

One file per detail-type (`call-ended.json`, ...): the EventBridge event as a rule's target
receives it (envelope and `detail`); `webhook.json`: the body POSTed to the NotifyUrl.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from callvault import outbound

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "docs" / "events"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _Envelope(BaseModel):
    """An EventBridge event, as a rule's target receives it."""

    model_config = ConfigDict(populate_by_name=True)

    version: str
    id: str = Field(description="EventBridge's id of this delivery (the change's own id is detail.id)")
    source: Literal["callvault"]
    account: str
    time: str = Field(description="When the change was written, ISO 8601 UTC")
    region: str
    resources: list[str]


def slug(detail_type: str) -> str:
    return detail_type.lower().replace(" ", "-")


def event_model(detail_type: str) -> type[BaseModel]:
    detail = outbound.DETAIL_MODELS[detail_type]
    fields: Any = {
        "detail_type": (Literal[detail_type], Field(alias="detail-type")),
        "detail": (detail, ...),
    }
    return create_model(detail_type.replace(" ", "") + "Event", __base__=_Envelope, **fields)


def webhook_model() -> type[BaseModel]:
    details: Any = Union[tuple(outbound.DETAIL_MODELS.values())]  # noqa: UP007 - a union built from the models
    types: Any = Literal[tuple(outbound.DETAIL_TYPES)]
    return create_model(
        "Webhook",
        __doc__="The body POSTed to the NotifyUrl (Standard Webhooks: webhook-id is data.id).",
        type=(types, ...),
        timestamp=(str, Field(description="When the change was written, ISO 8601 UTC")),
        data=(details, Field(discriminator="type")),
    )


def _document(model: type[BaseModel], title: str) -> dict[str, Any]:
    return {"$schema": DIALECT, **model.model_json_schema(by_alias=True, mode="serialization"), "title": title}


def build() -> dict[str, dict[str, Any]]:
    """File name -> schema."""
    documents = {f"{slug(t)}.json": _document(event_model(t), t) for t in outbound.DETAIL_MODELS}
    documents["webhook.json"] = _document(webhook_model(), "callvault outbound webhook")
    return documents


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def main() -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for name, document in build().items():
        (OUTPUT / name).write_text(render(document))
        print((OUTPUT / name).relative_to(ROOT))


if __name__ == "__main__":
    main()
