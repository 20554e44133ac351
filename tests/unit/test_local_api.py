"""The local HttpApi serves whatever routes a template declares, with API Gateway v2 events."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from callvault_local.dev import LocalApi
from callvault_local.template import load, routes

ECHO_HANDLER = """
import json

def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"status": "echo", "event": event, "function": context.function_name})}
"""

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo/
      Handler: app.handler
      Events:
        One:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: GET, Path: "/things/{kind}/{thing_id}"}
        Literal:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: GET, Path: "/things/special/one"}
        Upload:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: POST, Path: "/files/{path+}"}
"""


@pytest.fixture
def api(tmp_path: Path) -> LocalApi:
    (tmp_path / "echo").mkdir()
    (tmp_path / "echo" / "app.py").write_text(ECHO_HANDLER)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    load.cache_clear()
    return LocalApi(routes(tmp_path / "template.yaml"))


def _echo(api: LocalApi, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None) -> dict[str, Any]:
    reply = api.handle(method, target, headers or {}, body, "127.0.0.1")
    assert reply.status == 200 and reply.outcome == "echo", reply
    echoed: dict[str, Any] = json.loads(reply.body)
    return echoed


def test_a_route_in_the_template_is_served_with_path_and_query_parameters(api: LocalApi) -> None:
    echoed = _echo(api, "GET", "/things/widget/42?limit=5&cursor=abc%3D", headers={"X-Custom": "Yes"})
    event = echoed["event"]
    assert echoed["function"] == "EchoFunction"
    assert event["version"] == "2.0" and event["routeKey"] == "GET /things/{kind}/{thing_id}"
    assert event["pathParameters"] == {"kind": "widget", "thing_id": "42"}
    assert event["queryStringParameters"] == {"limit": "5", "cursor": "abc="}
    assert event["rawQueryString"] == "limit=5&cursor=abc%3D"
    assert event["headers"]["x-custom"] == "Yes"  # lower-cased, as API Gateway does
    assert event["requestContext"]["http"]["method"] == "GET" and event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"


def test_literal_routes_win_over_parameters_and_greedy_paths_take_the_rest(api: LocalApi) -> None:
    assert _echo(api, "GET", "/things/special/one")["event"]["routeKey"] == "GET /things/special/one"
    assert _echo(api, "POST", "/files/a/b/c.txt")["event"]["pathParameters"] == {"path": "a/b/c.txt"}


def test_binary_bodies_are_base64_and_text_bodies_are_text(api: LocalApi) -> None:
    binary = bytes(range(256))
    event = _echo(api, "POST", "/files/x", binary, {"content-type": "application/octet-stream"})["event"]
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == binary
    event = _echo(api, "POST", "/files/x", b'{"a": 1}', {"content-type": "application/json"})["event"]
    assert not event["isBase64Encoded"] and event["body"] == '{"a": 1}'


def test_unknown_paths_and_methods_are_404(api: LocalApi) -> None:
    """HTTP APIs answer a request no route matches, a known path with another method included,
    404 `{"message":"Not Found"}` (never 405)."""
    for method, target in (("GET", "/nothing"), ("DELETE", "/things/a/b"), ("POST", "/things/special/one")):
        reply = api.handle(method, target, {}, b"", "127.0.0.1")
        assert (reply.status, json.loads(reply.body)) == (404, {"message": "Not Found"}), (method, target)


def test_path_is_decoded_before_routing_and_handed_on_decoded(api: LocalApi) -> None:
    """As an HTTP API does: rawPath, requestContext.http.path and pathParameters carry the
    decoded path; an encoded slash is a slash (another segment)."""
    event = _echo(api, "GET", "/things/widget/%3Cstring%3E%20%C3%A9")["event"]
    assert event["pathParameters"] == {"kind": "widget", "thing_id": "<string> é"}
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == "/things/widget/<string> é"
    assert _echo(api, "POST", "/files/a%2Fb")["event"]["pathParameters"] == {"path": "a/b"}
    assert api.handle("GET", "/things/a%2Fb/c", {}, b"", "127.0.0.1").status == 404


def test_a_repeated_query_parameter_is_joined_with_commas(api: LocalApi) -> None:
    event = _echo(api, "GET", "/things/a/b?tag=x&tag=y%2Cz&plus=a+b&empty=")["event"]
    assert event["queryStringParameters"] == {"tag": "x,y,z", "plus": "a b", "empty": ""}
