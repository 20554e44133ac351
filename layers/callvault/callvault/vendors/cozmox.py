"""cozmox: server messages in Vapi's format, `{"message": {"type": ..., "call": {...}}}`.

cozmox speaks Vapi's server-message format and its server credentials, so it is the Vapi
adapter (callvault/vendors/vapi.py) under its own name. What differs: its recording links are
plain URLs, fetched as they are (no private storage behind an API key), and its calls API, which
reconcile pulls from, is its own (below).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from callvault.jsonbody import load_json
from callvault.models import Agent, Channel, Cost, SessionUpdate, Status, seconds_between, utc_iso
from callvault.vendor_api import ApiClient
from callvault.vendors import vapi
from callvault.vendors.base import (
    Listed,
    ObjectList,
    ParsedEvent,
    Pulled,
    Reconciler,
    VendorItem,
    VendorModel,
    compact,
    fetch_as_is,
    parse_model,
    require_session_id,
)

VENDOR = "cozmox"

# -- the API reconcile pulls from
#
# The starting document's API (api.cozmox.ai, Vapi's shapes) documents `GET /session/{id}`: a
# chat session (status active|completed, messages), fetched by an id one must already know; no
# call listing is published for it. cozmox's calls API (docs.cozmox.ai "List calls", the
# `cozmoxai` SDK: CallsResource, CallListResponse, CallRetrieveResponse) does list calls:
# `GET {base}/calls?start_date&end_date&page&size` -> `{"data": [...], "meta": {"page", "size",
# "total", "total_pages"}}` and `GET {base}/calls/{id}`, with `X-API-Key` (the docs) or Bearer
# (the SDK): both are sent. Its base URL carries the organization:
# https://v2-nova-api.prod.czmx.in/api/org/{org_id}, so it must be configured.

API_URL_HINT = (
    "set CALLVAULT_API_URL_COZMOX (in AWS, the CozmoxApiUrl parameter) to https://v2-nova-api.prod.czmx.in/api/org/<org_id>"
)
PAGE_SIZE = 100  # the API's largest
_CALL_STATUS = {
    "scheduled": Status.QUEUED,
    "ringing": Status.RINGING,
    "in_progress": Status.IN_PROGRESS,
    "completed": Status.ENDED,
    "no-answer": Status.ENDED,
    "failed": Status.ENDED,
    "busy": Status.ENDED,
}
_FAILED_STATUSES = frozenset({"no-answer", "failed", "busy"})
_DIRECTION = {"inbound": Channel.INBOUND_PHONE, "outbound": Channel.OUTBOUND_PHONE}


class ListedCall(VendorItem):
    id: str | None = None
    status: str | None = None


class CallsMeta(VendorModel):
    page: int | None = None
    total_pages: int | None = None


class CallsPage(VendorModel):
    data: ObjectList[ListedCall] | None = None
    meta: CallsMeta | None = None


class ApiCall(VendorModel):
    """`GET /calls/{id}` (the SDK's CallRetrieveResponse): the fields callvault maps."""

    id: str | None = None
    status: str | None = None
    direction: str | None = None
    call_type: str | None = None
    agent_name: str | None = None
    initial_agent_id: str | None = None
    organization_id: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    scheduled_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration_seconds: float | None = None
    cost_usd: float | None = None
    recording_url: str | None = None
    summary: str | None = None
    prospect_id: str | None = None
    workflow_run_id: str | None = None


def _call_status(value: str | None) -> Status | None:
    return _CALL_STATUS.get((value or "").lower())


def parse_api_call(payload: Any) -> ParsedEvent:
    """A call as the calls API returns it, mapped to the same session fields a server message
    fills (the shapes differ: this API names things its own way)."""
    call = parse_model(ApiCall, payload)
    session_id = require_session_id(call.id)
    status = (call.status or "").lower()
    started_at, ended_at = utc_iso(call.started_at), utc_iso(call.ended_at)
    update = SessionUpdate(
        status=_call_status(status),
        channel=_DIRECTION.get((call.direction or "").lower()),
        agent=Agent(id=call.initial_agent_id, name=call.agent_name) if call.initial_agent_id or call.agent_name else None,
        from_number=call.from_number,
        to_number=call.to_number,
        started_at=started_at,
        ended_at=ended_at,
        duration_seconds=call.duration_seconds if call.duration_seconds is not None else seconds_between(started_at, ended_at),
        ended_reason=status if status in _FAILED_STATUSES else None,
        cost=Cost(total_usd=call.cost_usd) if call.cost_usd is not None else None,
        recording_url=call.recording_url or None,
        summary=call.summary,
        vendor_fields=compact(
            {
                "org_id": call.organization_id,
                "call_type": call.call_type,
                "scheduled_at": utc_iso(call.scheduled_at),
                "prospect_id": call.prospect_id,
                "workflow_run_id": call.workflow_run_id,
            }
        ),
    )
    return ParsedEvent(event_type=f"call:{status or 'unknown'}", session_id=session_id, update=update)


def list_pages(client: ApiClient, since: str, until: str) -> Iterator[list[Listed]]:
    """Pages of `GET /calls?start_date&end_date&page&size`, from page 1 to `meta.total_pages`."""
    page_number = 1
    while True:
        body = client.request("GET", "/calls", {"start_date": since, "end_date": until, "page": page_number, "size": PAGE_SIZE})
        page = parse_model(CallsPage, load_json(body))
        items = page.data or []
        yield [Listed(session_id=require_session_id(item.id), status=_call_status(item.status)) for item in items if item.id]
        total = page.meta.total_pages if page.meta else None
        if not items or total is None or page_number >= total:
            return
        page_number += 1


def fetch(client: ApiClient, listed: Listed) -> Pulled:
    """`GET /calls/{id}`: the whole call, recording URL and summary included."""
    return Pulled(body=client.request("GET", f"/calls/{quote(listed.session_id, safe='')}"), parse=parse_api_call)


RECONCILER = Reconciler(
    public_url=None,
    url_hint=API_URL_HINT,
    auth_headers=lambda key: {"X-API-Key": key, "Authorization": f"Bearer {key}"},
    list_pages=list_pages,
    fetch=fetch,
    parse=parse_api_call,
)


ADAPTER = replace(vapi.ADAPTER, vendor=VENDOR, recording_fetch=fetch_as_is, reconciler=RECONCILER)
