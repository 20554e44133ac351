"""The OpenAPI document of callvault's whole HTTP surface, generated from the code.

- Routes: every HttpApi route of `template.yaml`.
- The read API: the read function's own Powertools resolver (its parameters, their bounds and
  its response models are the code that validates them).
- Webhooks: the response types `callvault.http` answers with, and each vendor module's account
  of how that vendor authenticates.

    make openapi      (writes docs/openapi.json; tests fail when it is stale)
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from pydantic import TypeAdapter

from callvault_local.functions import load_module
from callvault_local.template import ROOT, Route, load, routes

OUTPUT = ROOT / "docs" / "openapi.json"
_ERROR_STATUSES = {
    "400": "Body not JSON or without a session id; the authenticated bytes are kept under quarantine/",
    "401": "Missing or wrong credentials or signature; nothing is written",
    "413": "Body over the size limit",
    "503": "Storage unavailable; retry (nothing was half-written)",
}


def _schema_ref(schemas: dict[str, Any], name: str, kind: Any) -> dict[str, str]:
    schema = TypeAdapter(kind).json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def _webhook_operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    from callvault.http import ErrorReply, WebhookReply

    _, _, vendor, webhook = route.path.split("/")
    adapter_module = importlib.import_module(f"callvault.vendors.{vendor}")
    doc = (adapter_module.__doc__ or "").strip()
    function = load()["Resources"][route.function]["Properties"]
    reply, error = _schema_ref(schemas, "WebhookReply", WebhookReply), _schema_ref(schemas, "ErrorReply", ErrorReply)
    responses: dict[str, Any] = {
        "200": {
            "description": "stored, duplicate (nothing written twice), ignored (acknowledged; raw payload archived)"
            " or forgotten (the session was erased: nothing written)",
            "content": {"application/json": {"schema": reply}},
        }
    }
    for status, description in _ERROR_STATUSES.items():
        responses[status] = {"description": description, "content": {"application/json": {"schema": error}}}
    return {
        "operationId": f"{vendor}_{webhook}".replace("-", "_"),
        "tags": ["webhooks"],
        "summary": function.get("Description", route.path),
        "description": doc,
        "requestBody": {
            "required": True,
            "description": (
                f"The payload exactly as {vendor} sends it, authenticated as {vendor} authenticates (see docs/vendors.md)."
            ),
            "content": {"application/json": {"schema": {}}},
        },
        "responses": responses,
    }


def _read_api(read_routes: list[Route]) -> dict[str, Any]:
    """The paths and schemas of the function(s) serving the read routes, from their resolvers."""
    document: dict[str, Any] = {"paths": {}, "components": {"schemas": {}}}
    for function in sorted({r.function for r in read_routes}):
        route = next(r for r in read_routes if r.function == function)
        app = load_module(route.code_uri, route.handler, route.function).app
        generated = json.loads(app.get_openapi_json_schema(title="callvault"))
        for path, operations in generated.get("paths", {}).items():  # GET and DELETE share a path
            document["paths"].setdefault(path, {}).update(operations)
        document["components"]["schemas"].update(generated.get("components", {}).get("schemas", {}))
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorReply"}}}}
    for path, item in document["paths"].items():
        for operation in item.values():
            operation["tags"] = ["sessions"]
            operation["security"] = [{"sigv4": []}]
            # Powertools documents 422 for validation errors; callvault answers 400, naming the parameter.
            operation["responses"].pop("422", None)
            operation["responses"]["400"] = {"description": "A bad or unknown parameter, named in the error", **error}
            if "{" in path:
                not_found = operation["responses"].get("404", {}).get("description", "No such session, or no such vendor")
                operation["responses"]["404"] = {"description": not_found, **error}
            if "302" in operation["responses"]:  # a redirect has no body, only where it points
                location = {"Location": {"schema": {"type": "string", "format": "uri"}}}
                operation["responses"]["302"] = {"description": operation["responses"]["302"]["description"], "headers": location}
            operation["responses"]["503"] = {"description": "Storage unavailable; retry", **error}
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        document["components"]["schemas"].pop(unused, None)
    return document


def build() -> dict[str, Any]:
    """The whole document, as a JSON-ready dict."""
    from callvault.http import ErrorReply

    all_routes = routes()
    webhooks = [r for r in all_routes if r.method == "POST" and r.path.startswith("/webhooks/")]
    read = _read_api([r for r in all_routes if r not in webhooks])
    schemas: dict[str, Any] = dict(read["components"]["schemas"])
    _schema_ref(schemas, "ErrorReply", ErrorReply)
    paths: dict[str, Any] = {}
    for route in sorted(webhooks, key=lambda r: r.path):
        paths.setdefault(route.path, {})[route.method.lower()] = _webhook_operation(route, schemas)
    for path, item in sorted(read["paths"].items()):
        paths[path.replace("<", "{").replace(">", "}")] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "callvault",
            "version": _version(),
            "description": "Voice-AI vendor webhooks stored exactly once in your AWS account, and read back normalized.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "AWS SigV4 (service execute-api) in AWS; open on the local stack.",
                }
            },
        },
    }


def _version() -> str:
    import tomllib

    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


def main() -> None:
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(render())
    print(OUTPUT.relative_to(ROOT))


if __name__ == "__main__":
    main()
