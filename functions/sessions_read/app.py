"""GET /sessions and GET /sessions/{vendor}/{session_id}: the read API (IAM-authorized in AWS)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths

from callvault import sessions
from callvault.api import SessionNotFound, resolver
from callvault.models import Session, Status
from callvault.observability import logger

app = resolver()


@app.get("/sessions", summary="List sessions, newest first")
def list_sessions(
    vendor: Annotated[str | None, Query(description="Only this vendor's sessions")] = None,
    status: Annotated[Status | None, Query(description="Only sessions in this status")] = None,
    created_after: Annotated[str | None, Query(description="ISO 8601; exclusive")] = None,
    created_before: Annotated[str | None, Query(description="ISO 8601; exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=sessions.MAX_LIMIT, description="Page size")] = sessions.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> sessions.SessionPage:
    return sessions.list_sessions(
        vendor=vendor,
        status=status.value if status else None,
        created_after=created_after,
        created_before=created_before,
        limit=limit,
        cursor=cursor,
    )


@app.get("/sessions/<vendor>/<session_id>", summary="One session, with its transcript, events and recording")
def get_session(
    vendor: Annotated[str, Path(description="The vendor")],
    session_id: Annotated[str, Path(description="The vendor's session id")],
) -> Session:
    found = sessions.get_session(vendor, session_id)
    if found is None:
        raise SessionNotFound(f"no session {session_id!r} for {vendor}")
    return found


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
