"""GET /sessions, GET /sessions/{vendor}/{session_id} and its /recording: the read API (IAM-authorized in AWS)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths

from callvault import archive, sessions
from callvault.api import SessionNotFound, resolver
from callvault.models import Session, Status
from callvault.observability import logger

app = resolver()


def _reject_unknown_query(route: Callable[..., Any]) -> None:
    """A query parameter `route` does not take is a 400 naming it: a typo (`vendr=`) must not
    silently widen the listing to everything."""
    known = list(inspect.signature(route).parameters)
    unknown = sorted(set(app.current_event.query_string_parameters or {}) - set(known))
    if unknown:
        raise sessions.InvalidParameter(unknown[0], f"unknown query parameter; one of {', '.join(known)}")


@app.get("/sessions", summary="List sessions, newest first")
def list_sessions(
    vendor: Annotated[str | None, Query(description="Only this vendor's sessions")] = None,
    status: Annotated[Status | None, Query(description="Only sessions in this status")] = None,
    created_after: Annotated[str | None, Query(description="ISO 8601; exclusive")] = None,
    created_before: Annotated[str | None, Query(description="ISO 8601; exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=sessions.MAX_LIMIT, description="Page size")] = sessions.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> sessions.SessionPage:
    _reject_unknown_query(list_sessions)
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


# Long enough to load and play a call, short enough that a leaked link soon reads nothing; a page
# that outlives it asks this route again (the call browser does so when its player errs).
RECORDING_URL_SECONDS = 300


@app.get(
    "/sessions/<vendor>/<session_id>/recording",
    summary="302 to a short-lived presigned S3 URL of the archived recording",
    responses={
        302: {"description": "`Location` is a presigned S3 URL (Range requests work there)"},
        404: {"description": "No such session or vendor, or no recording archived (none, not yet, failed, erased)"},
    },
)
def get_recording(
    vendor: Annotated[str, Path(description="The vendor")],
    session_id: Annotated[str, Path(description="The vendor's session id")],
) -> Response[str]:
    key = sessions.archived_recording_key(vendor, session_id)
    if key is None:
        raise SessionNotFound(f"no archived recording for session {session_id!r} of {vendor}")
    url = archive.presigned_get(key, RECORDING_URL_SECONDS)
    # no-store: a cached redirect would outlive the URL it points at.
    return Response(status_code=302, headers={"Location": url, "Cache-Control": "no-store"}, body="")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
