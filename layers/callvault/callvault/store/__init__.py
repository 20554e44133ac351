"""DynamoDB: one event item per event and one session item per call, in one table; a module per
thing stored:

- `table`: the keys (a session's items share a partition), the items' form, retention, calling DynamoDB;
- `events`: an event's item, stored exactly once in one transaction with its session's update;
- `sessions`: the session item's attributes (kept small: references to raw bodies) and reading it back;
- `recordings`: a session's recording in its item, and the claim that lets one copier copy it once;
- `listing`: the listing keys and indexes, and one page of a listing;
- `tombstones`: an erased session's tombstone, and deleting a session's items;
- `watermarks`: reconcile's watermark per vendor.

Callers use `from callvault import store` and `store.<name>`: every public name is here, as it was
when this was one module (tests patch `store.record_event` and the callers see it). Importing the
package imports all of them, as the one module did: the same imports outside it.
"""

from __future__ import annotations

from callvault.store.events import EventRecord, Outcome, record_event
from callvault.store.listing import (
    INDEXES,
    LIST_SK_ATTR,
    VENDOR_LIST_SK_ATTR,
    VENDOR_STATUS_ATTR,
    improve_listing,
    list_sort_key,
    listed_at,
    query_listing,
)
from callvault.store.recordings import (
    RECORDING_ATTR_PREFIX,
    RecordingClaim,
    claim_embedded_recording,
    claim_recording,
    finish_recording,
    recording_attr,
    recording_claim,
    recording_from_item,
    recording_of,
    recording_values,
    release_recording,
)
from callvault.store.sessions import (
    ERASED_RANK,
    MAX_DOCUMENT_BYTES,
    MAX_SCALAR_BYTES,
    MAX_SUMMARY_BYTES,
    MAX_VENDOR_FIELDS_BYTES,
    METRICS_ATTR,
    REFERENCE_KEY,
    TRANSCRIPT_ATTR,
    TRANSCRIPT_TURNS_ATTR,
    VENDOR_FIELD_PREFIX,
    get_sessions,
    partial_documents,
    reference,
    referenced,
    session_attributes,
    session_items,
    status_rank,
    transcript_turns,
)
from callvault.store.table import EVENT_SK_PREFIX, EXPIRES_ATTR, SESSION_SK, Item, expired, session_digest, session_pk
from callvault.store.tombstones import ERASED_ATTR, delete_items, is_tombstone, put_tombstone, tombstone
from callvault.store.watermarks import WATERMARK_SK, advance_watermark, get_watermark, watermark_pk

__all__ = [
    "ERASED_ATTR",
    "ERASED_RANK",
    "EVENT_SK_PREFIX",
    "EXPIRES_ATTR",
    "INDEXES",
    "LIST_SK_ATTR",
    "MAX_DOCUMENT_BYTES",
    "MAX_SCALAR_BYTES",
    "MAX_SUMMARY_BYTES",
    "MAX_VENDOR_FIELDS_BYTES",
    "METRICS_ATTR",
    "RECORDING_ATTR_PREFIX",
    "REFERENCE_KEY",
    "SESSION_SK",
    "TRANSCRIPT_ATTR",
    "TRANSCRIPT_TURNS_ATTR",
    "VENDOR_FIELD_PREFIX",
    "VENDOR_LIST_SK_ATTR",
    "VENDOR_STATUS_ATTR",
    "WATERMARK_SK",
    "EventRecord",
    "Item",
    "Outcome",
    "RecordingClaim",
    "advance_watermark",
    "claim_embedded_recording",
    "claim_recording",
    "delete_items",
    "expired",
    "finish_recording",
    "get_sessions",
    "get_watermark",
    "improve_listing",
    "is_tombstone",
    "list_sort_key",
    "listed_at",
    "partial_documents",
    "put_tombstone",
    "query_listing",
    "record_event",
    "recording_attr",
    "recording_claim",
    "recording_from_item",
    "recording_of",
    "recording_values",
    "reference",
    "referenced",
    "release_recording",
    "session_attributes",
    "session_digest",
    "session_items",
    "session_pk",
    "status_rank",
    "tombstone",
    "transcript_turns",
    "watermark_pk",
]
