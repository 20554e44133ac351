"""DELETE /sessions/{vendor}/{session_id}: erase one session everywhere (IAM-authorized in AWS)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths

from callvault import erasure
from callvault.api import SessionNotFound, resolver
from callvault.observability import logger

app = resolver()


def _caller() -> str:
    """Who asked: the IAM principal API Gateway authorized (logged with the erasure)."""
    iam = app.current_event.request_context.authorizer.iam
    return (iam.user_arn if iam else None) or "unknown"


@app.delete("/sessions/<vendor>/<session_id>", summary="Erase one session everywhere; a tombstone keeps it forgotten")
def erase_session(
    vendor: Annotated[str, Path(description="The vendor")],
    session_id: Annotated[str, Path(description="The vendor's session id")],
) -> erasure.Forgotten:
    done = erasure.erase(vendor, session_id, who=_caller())
    if done is None:
        raise SessionNotFound(f"no session {session_id!r} for {vendor}")
    return done.answer()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
