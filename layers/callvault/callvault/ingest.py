"""The ingest pipeline: verify, parse, archive, store, respond (DESIGN.md "Responses").

Order matters: the raw body is in S3 before anything points at it from DynamoDB, and both
writes are conditional, so a crash or a vendor retry at any point converges to exactly one
stored event. Nothing is written before the request is authenticated.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from callvault import archive, store
from callvault.auth import AuthError, authenticate
from callvault.config import settings
from callvault.errors import StorageUnavailable
from callvault.http import BadRequestEncoding, Request, WebhookReply, error, json_response, read_request
from callvault.jsonbody import dump_json, load_json
from callvault.models import SessionUpdate, format_utc
from callvault.observability import count, count_rejected, logger, metrics
from callvault.secrets import secrets_for
from callvault.vendors.base import ParsedEvent, PayloadError, VendorAdapter, reading_session_id

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

Outcome = Literal["stored", "duplicate", "ignored", "forgotten", "quarantined"]


@dataclass(frozen=True, slots=True)
class Filed:
    """What became of an authenticated body: its outcome, and the ids (or the reason it was quarantined)."""

    outcome: Outcome
    event_id: str = ""
    session_id: str = ""
    reason: str = ""


# The metric each outcome counts on the webhook path (a replay counts none: nothing arrived).
_OUTCOME_METRICS: dict[Outcome, str] = {
    "stored": "EventsStored",
    "duplicate": "EventsDuplicate",
    "ignored": "EventsIgnored",
    "forgotten": "EventsForgotten",
}

# A vendor's own event id is used as is when it is safe in an S3 key and a DynamoDB sort key.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@=+-]{0,199}")


def event_id_for(adapter: VendorAdapter, webhook: str, parsed: ParsedEvent, request: Request, payload: Any) -> str:
    """The idempotency key: the vendor's event id where it has one (its own field, or the
    Standard Webhooks `webhook-id` header), else a SHA-256 of vendor, webhook and canonical JSON."""
    key = parsed.vendor_event_id or request.headers.get("webhook-id")
    if key:
        return key if _SAFE_ID.fullmatch(key) else hashlib.sha256(f"{adapter.vendor}\0{key}".encode()).hexdigest()
    # Canonical: parsed and re-serialized compactly, so whitespace and escaping do not matter.
    # Key order stays as sent: sorting would cost more than the rest of the pipeline.
    return hashlib.sha256(f"{adapter.vendor}\0{webhook}\0".encode() + dump_json(payload)).hexdigest()


def _quarantine(
    adapter: VendorAdapter, webhook: str, request: Request, received: datetime, reason: str, session_id: str | None = None
) -> Filed:
    """Keep authenticated bytes we cannot file (the sender gets 400): a parser fix can replay them.

    Unless they name a forgotten session: when the parse read the session id before it failed,
    a body of an erased session is answered forgotten and kept nowhere (looked up before it is
    kept, and again after, for an erasure that ran meanwhile). A body whose session id cannot be
    read cannot be known to belong to any session: it is kept (an erasure finds it by the id)."""
    if session_id and store.tombstone(adapter.vendor, session_id) is not None:
        return _forgotten(session_id)
    digest = hashlib.sha256(request.body).hexdigest()
    key = archive.quarantine_key(adapter.vendor, webhook, digest, received, session_id)
    created = archive.put_once(key, request.body, "application/octet-stream")
    if session_id and store.tombstone(adapter.vendor, session_id) is not None:
        archive.delete_versions([archive.Version(key, created, is_marker=False)] if created else [])
        return _forgotten(session_id)
    logger.warning("event quarantined", reason=reason, body_sha256=digest, bytes=len(request.body))
    return Filed("quarantined", reason=reason)


def _forgotten(session_id: str, event_id: str = "") -> Filed:
    logger.info("event for a forgotten session dropped")
    return Filed("forgotten", event_id, session_id)


def _authenticate(adapter: VendorAdapter, request: Request) -> None:
    scheme = adapter.auth_scheme(settings())
    secrets = secrets_for(adapter.vendor)
    try:
        authenticate(scheme, request.headers, request.body, secrets)
    except AuthError:
        # A secret rotated in since the cache was filled: look again (rate-limited) before refusing.
        refreshed = secrets_for(adapter.vendor, refresh=True)
        if refreshed == secrets:
            raise
        authenticate(scheme, request.headers, request.body, refreshed)


def ingest(adapter: VendorAdapter, webhook: str, event: dict[str, Any]) -> dict[str, Any]:
    """Handle one webhook request end to end and return the API Gateway response."""
    vendor = adapter.vendor
    count("EventsReceived")
    try:
        request = read_request(event)
    except BadRequestEncoding:
        count_rejected(vendor, "malformed")
        return error(400, "body is not valid base64")
    if len(request.body) > settings().max_body_bytes:
        count_rejected(vendor, "too_large")
        return error(413, f"body is larger than {settings().max_body_bytes} bytes")
    try:
        _authenticate(adapter, request)
    except AuthError as exc:
        count_rejected(vendor, "unauthorized")
        logger.warning("request refused", reason=exc.reason)
        return error(401, exc.reason)

    try:
        filed = _file(adapter, webhook, request, datetime.now(UTC))
    except StorageUnavailable as exc:
        count("StorageErrors")
        logger.error("storage unavailable", reason=str(exc))
        return error(503, "storage unavailable, retry later")
    if filed.outcome == "quarantined":
        count_rejected(vendor, "malformed")
        return error(400, filed.reason)
    count(_OUTCOME_METRICS[filed.outcome])
    reply = WebhookReply(status=filed.outcome, event_id=filed.event_id, vendor=vendor, session_id=filed.session_id)
    return json_response(200, reply)


def replay(adapter: VendorAdapter, webhook: str, body: bytes, received: datetime, event_id: str | None) -> Outcome:
    """File archived bytes again, as if they had just arrived (after a parser fix): the outcome.
    Idempotent: `event_id` is the id the raw object was archived under (None for a quarantined
    body, which never had one). Counts no metric: a replay is not traffic, and a body that still
    does not parse must not look like new malformed events to the quarantine alarm.

    A body pulled from the vendor's API (`webhook` "pull") is parsed by the vendor's reconciler,
    as `file_pulled` parsed it when it was pulled.

    A session stored before listing times (DESIGN.md "Listing times") takes the time a replayed
    event tells even when the event itself is a duplicate (`store.improve_listing`).

    No authentication: the bytes come from the archive, which holds only authenticated bodies.
    Raises StorageUnavailable."""
    parse = None
    if webhook == PULL:
        if adapter.reconciler is None:
            raise ValueError(f"{adapter.vendor} has no pull API to parse {webhook!r} bodies with")
        reconciler = adapter.reconciler

        def parse(payload: Any, _headers: dict[str, str]) -> ParsedEvent:
            return reconciler.parse(payload)

    return _file(adapter, webhook, Request(headers={}, body=body), received, event_id, parse, relist=True).outcome


def replayable(adapter: VendorAdapter, webhook: str) -> bool:
    """Whether archived bodies of `webhook` can be filed again: a webhook route of the vendor, or
    what reconcile pulled from its API."""
    return webhook in adapter.webhooks or (webhook == PULL and adapter.reconciler is not None)


def parse_archived(vendor: str, webhook: str, body: bytes) -> SessionUpdate | None:
    """What an archived raw body says about its session, parsed again as it was when it arrived:
    the read API resolving a session attribute that points at the body (DESIGN.md "Cost of a write"),
    the transcript's turns normalized (the write only counted them).
    Raises ValueError or PayloadError when the body no longer parses."""
    adapter: VendorAdapter = importlib.import_module(f"callvault.vendors.{vendor}").ADAPTER
    if webhook == PULL and adapter.reconciler is not None:  # a response of the vendor's own API
        return adapter.reconciler.parse(load_json(body)).read_update()
    return adapter.parse(webhook, load_json(body), {}).read_update()


def file_pulled(adapter: VendorAdapter, body: bytes, received: datetime, parse: Callable[[Any], ParsedEvent]) -> Filed:
    """A conversation reconcile pulled from the vendor's API, filed as a webhook event is: the
    response archived byte for byte under `raw/{vendor}/pull/`, its event marked `source: pull`,
    the same idempotency key (an unchanged conversation pulled again is a duplicate) and merge
    rules. `parse` maps the API's conversation to the event (the vendor module's mapping).
    Raises StorageUnavailable."""
    return _file(adapter, PULL, Request(headers={}, body=body), received, parse=lambda payload, _headers: parse(payload))


# The `webhook` name of what reconcile pulls: its raw prefix and the event's `webhook` attribute.
PULL = "pull"


def _file(
    adapter: VendorAdapter,
    webhook: str,
    request: Request,
    received: datetime,
    known_event_id: str | None = None,
    parse: Callable[[Any, dict[str, str]], ParsedEvent] | None = None,
    *,
    relist: bool = False,
) -> Filed:
    """An authenticated request (or a pulled API response), parsed, archived and stored (or
    quarantined). `relist`: a duplicate still moves its session's listing time (a replay)."""
    try:
        payload = load_json(request.body)
    except ValueError:
        return _quarantine(adapter, webhook, request, received, "body is not JSON")
    with reading_session_id() as session_id_read:
        try:
            parsed = parse(payload, request.headers) if parse else adapter.parse(webhook, payload, request.headers)
        except PayloadError as exc:
            return _quarantine(adapter, webhook, request, received, str(exc), session_id_read())
        except Exception:  # an adapter bug must not cost the event: keep it for replay
            logger.exception("adapter failed")
            return _quarantine(adapter, webhook, request, received, "payload could not be read", session_id_read())
    return _archive_and_store(adapter, webhook, request, payload, parsed, received, known_event_id, relist=relist)


def _archive_and_store(
    adapter: VendorAdapter,
    webhook: str,
    request: Request,
    payload: Any,
    parsed: ParsedEvent,
    received: datetime,
    known_event_id: str | None = None,
    *,
    relist: bool = False,
) -> Filed:
    event_id = known_event_id or event_id_for(adapter, webhook, parsed, request, payload)
    session_id = parsed.session_id or ""
    logger.append_keys(event_id=event_id, session_id=session_id, event_type=parsed.event_type)
    key = archive.raw_key(adapter.vendor, webhook, event_id, received, session_id)
    # No transaction will look at the tombstone (acknowledged only): look before writing (one GetItem).
    if parsed.update is None and session_id and store.tombstone(adapter.vendor, session_id) is not None:
        return _forgotten(session_id, event_id)
    if parsed.update is None:
        archive.put_once(key, request.body, "application/json")
        logger.info("event acknowledged")
        return Filed("ignored", event_id, session_id)
    created = archive.put_once(key, request.body, "application/json")

    record = store.EventRecord(
        vendor=adapter.vendor,
        session_id=session_id,
        event_id=event_id,
        event_type=parsed.event_type,
        webhook=webhook,
        received_at=format_utc(received),
        raw_s3_uri=archive.s3_uri(key),
        source="pull" if webhook == PULL else "webhook",
    )
    outcome = store.record_event(record, parsed.update)
    if outcome == "duplicate" and relist:
        store.improve_listing(record, parsed.update)
    if parsed.recording is not None and outcome != "forgotten":
        # The audio in the body itself, after the event (a retry, a duplicate, finishes what an
        # earlier delivery could not): the session's recording unless one was had first.
        from callvault import recordings  # only this path pays for the recordings module

        if recordings.store_embedded_once(adapter.vendor, session_id, event_id, parsed.recording) == "forgotten":
            outcome = "forgotten"  # erased while the audio went up: the audio is taken back
    if outcome == "forgotten":
        # Erased meanwhile: take back the raw body this delivery archived.
        archive.delete_versions([archive.Version(key, created, is_marker=False)] if created else [])
        return _forgotten(session_id, event_id)
    logger.info("event recorded", outcome=outcome)
    return Filed(outcome, event_id, session_id)


def webhook_handler(adapter: VendorAdapter, webhook: str) -> Handler:
    """The Lambda handler for one vendor webhook route."""
    if webhook not in adapter.webhooks:
        raise ValueError(f"{adapter.vendor} has no webhook {webhook!r}")

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # The correlation id `correlation_paths.API_GATEWAY_HTTP` names, read directly: its JMESPath
        # search was a tenth of the handler's own time on every event.
        request_context = event.get("requestContext")
        logger.set_correlation_id(request_context.get("requestId") if isinstance(request_context, dict) else None)
        logger.append_keys(vendor=adapter.vendor, webhook=webhook)
        metrics.add_dimension(name="vendor", value=adapter.vendor)
        return ingest(adapter, webhook, event)

    handler.vendor = adapter.vendor  # type: ignore[attr-defined,unused-ignore]
    handler.webhook = webhook  # type: ignore[attr-defined,unused-ignore]
    return cast(Handler, handler)
