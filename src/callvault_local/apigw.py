"""API Gateway HTTP API (payload format 2.0) events, built the way API Gateway builds them."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

_TEXT_TYPES = ("application/json", "text/", "application/xml", "application/x-www-form-urlencoded")


def http_event(
    method: str,
    path: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    route_key: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
    query: str = "",
    source_ip: str = "127.0.0.1",
    now: float | None = None,
) -> dict[str, Any]:
    """An event as API Gateway hands it to Lambda: lower-cased headers, text bodies as text,
    anything else base64-encoded. `path` is the decoded path, as an HTTP API passes it on; `now`
    the request time (epoch seconds; default the present)."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    content_type = lowered.get("content-type", "")
    is_text = (content_type.startswith(_TEXT_TYPES) or not content_type) and _is_utf8(body)
    now = time.time() if now is None else now
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": lowered.get("host", "127.0.0.1"),
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key or f"{method} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": not is_text,
        "body": body.decode() if is_text else base64.b64encode(body).decode(),
    }
    if query:
        event["queryStringParameters"] = query_parameters(query)
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    return event


def query_parameters(query: str) -> dict[str, str]:
    """`queryStringParameters` as payload 2.0 has them: decoded, a repeated name's values joined by commas."""
    parameters: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
    return parameters


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


class LambdaContext:
    """The parts of the Lambda context object Powertools reads."""

    def __init__(self, function_name: str = "callvault-local", timeout_ms: int = 15_000) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
