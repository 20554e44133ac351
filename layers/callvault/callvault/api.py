"""The resolver the read and erase functions share: errors mapped to JSON answers alike."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from callvault.errors import StorageUnavailable
from callvault.observability import logger
from callvault.sessions import InvalidParameter, UnknownVendor


class SessionNotFound(LookupError):
    """No such session: a 404."""


def error(status: int, message: str) -> Response[dict[str, str]]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body={"error": message})


def resolver() -> APIGatewayHttpResolver:
    """A validating HTTP API resolver whose errors are `{"error": ...}`: 400 naming the bad
    parameter, 404 for an unknown session or route, 503 when storage fails."""
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.exception_handler(RequestValidationError)
    def _bad_parameter(exc: RequestValidationError) -> Response[dict[str, str]]:
        first = exc.errors()[0] if exc.errors() else {}
        name = str(first.get("loc", ["", "request"])[-1])
        return error(400, f"{name}: {first.get('msg', 'invalid')}")

    @app.exception_handler(InvalidParameter)
    def _invalid(exc: InvalidParameter) -> Response[dict[str, str]]:
        return error(400, str(exc))

    @app.exception_handler([SessionNotFound, UnknownVendor])
    def _not_found(exc: LookupError) -> Response[dict[str, str]]:
        return error(404, str(exc))

    @app.exception_handler(StorageUnavailable)
    def _unavailable(exc: StorageUnavailable) -> Response[dict[str, str]]:
        logger.error("storage unavailable", reason=str(exc))
        return error(503, "storage unavailable, retry later")

    @app.not_found
    def _no_route(_: Exception) -> Response[dict[str, str]]:
        return error(404, "no such route")

    return app
