"""API Gateway (HTTP API, payload 2.0) requests and responses."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Literal

from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12


class WebhookReply(TypedDict):
    """What a webhook route answers with 200 (DESIGN.md "Responses")."""

    status: Literal["stored", "duplicate", "ignored", "forgotten"]
    event_id: str
    vendor: str
    session_id: str | None


class ErrorReply(TypedDict):
    """Every error answer: 4xx for what the sender did, 5xx for what failed here."""

    error: str


@dataclass(frozen=True, slots=True)
class Request:
    headers: dict[str, str]  # names lower-cased
    body: bytes


class BadRequestEncoding(Exception):
    """The event claims a base64 body that is not base64."""


def read_request(event: dict[str, Any]) -> Request:
    """The raw body as the sender sent it, and the headers with lower-cased names."""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequestEncoding from exc
    else:
        raw = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else bytes(body)
    return Request(headers=headers, body=raw)


# json.dumps(payload, separators=(",", ":")), the encoder built once rather than per reply.
_REPLY_JSON = json.JSONEncoder(separators=(",", ":"))


def json_response(status: int, payload: WebhookReply | ErrorReply) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": _REPLY_JSON.encode(payload),
    }


def error(status: int, message: str) -> dict[str, Any]:
    return json_response(status, ErrorReply(error=message))
