"""What every vendor adapter shares: the adapter record, the parse result, lenient models."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from callvault.auth import Headers, Verifier
from callvault.config import Settings
from callvault.models import Agent, CallMetrics, SessionUpdate, Status, format_utc, utc_iso, with_transcript

if TYPE_CHECKING:
    from callvault.vendor_api import ApiClient


class PayloadError(Exception):
    """An authenticated body callvault cannot file (not an object, no session id): quarantined."""


@dataclass(frozen=True, slots=True)
class EmbeddedRecording:
    """A recording carried in the body itself (base64), not behind a link: stored as the session's
    recording by the pipeline, decoded in chunks on its way to S3."""

    base64_text: str
    content_type: str


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """One webhook event, understood. `update` None means acknowledged only (`ignored`).

    The transcript snapshot the event carries is counted (`update.transcript_turns`), not built:
    the write stores its length and a pointer to the raw body. `transcript` builds its turns,
    normalized, for whoever reads them (`read_update`)."""

    event_type: str
    session_id: str | None
    update: SessionUpdate | None
    vendor_event_id: str | None = None
    recording: EmbeddedRecording | None = None
    transcript: Callable[[], list[dict[str, Any]]] | None = None

    def read_update(self) -> SessionUpdate | None:
        """`update` as the read API gives it back: with its transcript's turns."""
        if self.update is None or self.transcript is None:
            return self.update
        return with_transcript(self.update, self.transcript())


@dataclass(frozen=True, slots=True)
class Fetch:
    """The first request of a recording's download: its URL and the headers it needs. The
    headers go with the request for that URL only, never to where it redirects."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


def fetch_as_is(session_id: str, url: str) -> Fetch:
    """A recording link is fetched as it is (most vendors' links are public or pre-signed)."""
    return Fetch(url)


@dataclass(frozen=True, slots=True)
class Listed:
    """One conversation as the vendor's list API shows it: enough to tell whether to fetch it."""

    session_id: str
    status: Status | None


def cursor_pages(request: Callable[[str | None], tuple[list[Listed], bool, str | None]], what: str) -> Iterator[list[Listed]]:
    """Every page of a list API that pages by an opaque cursor, to the last. `request(cursor)`
    (None: the first page) answers the page's conversations, whether more follow (False on an
    empty page), and the next cursor. Raises vendor_api.ApiError when the API promises more
    without a cursor it has not given before (it would send the pass round for ever)."""
    from callvault.vendor_api import ApiError

    cursor: str | None = None
    seen: set[str] = set()
    while True:
        listed, more, next_cursor = request(cursor)
        yield listed
        if not more:
            return
        if not next_cursor or next_cursor in seen:
            raise ApiError(f"{what}: more pages promised without a new cursor ({next_cursor!r})")
        cursor = next_cursor
        seen.add(cursor)


@dataclass(frozen=True, slots=True)
class Pulled:
    """One conversation as the vendor's API answered for it: the bytes to archive, and the
    mapping of their JSON to the event they make."""

    body: bytes
    parse: Callable[[Any], ParsedEvent]


@dataclass(frozen=True)
class Reconciler:
    """A vendor's pull API, as reconcile sees it (DESIGN.md "Reconcile")."""

    # The API's base URL, or None where each account has its own (then it must be configured).
    public_url: str | None
    # How to configure the URL where `public_url` is None.
    url_hint: str
    # The headers that carry the API key.
    auth_headers: Callable[[str], dict[str, str]]
    # Every page of conversations created from `since` to `until` (ISO 8601 UTC), to the end;
    # raises vendor_api.ApiError for a page that cannot be had.
    list_pages: Callable[[ApiClient, str, str], Iterator[list[Listed]]]
    # One conversation, fetched whole; raises vendor_api.ApiError.
    fetch: Callable[[ApiClient, Listed], Pulled]
    # A fetched conversation's JSON as the event it makes (what `fetch` archives; the read API
    # parses archived bodies again with it).
    parse: Callable[[Any], ParsedEvent]


@dataclass(frozen=True)
class VendorAdapter:
    """A vendor as the ingest pipeline sees it."""

    vendor: str
    webhooks: frozenset[str]
    auth_scheme: Callable[[Settings], Sequence[Verifier]]
    parse: Callable[[str, Any, Headers], ParsedEvent]
    # The headers this vendor sends to authenticate `body` with `secret` (local CLI and tests).
    sign: Callable[[bytes, str], dict[str, str]]
    # How the copier fetches a session's recording link (session id, link): a vendor whose
    # storage wants credentials says here how to ask for it.
    recording_fetch: Callable[[str, str], Fetch] = fetch_as_is
    # The vendor's own API for reconcile, where it has one that lists calls.
    reconciler: Reconciler | None = None


class VendorModel(BaseModel):
    """A vendor payload model: unknown fields kept, every field optional (see `parse_model`)."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, populate_by_name=True, allow_inf_nan=False)


class VendorItem(VendorModel):
    """One of many repeated items (a transcript turn): only the fields read are parsed.

    A long call has thousands; their other fields stay in the raw archive, byte for byte.
    """

    model_config = ConfigDict(extra="ignore")


def _objects_only(value: Any) -> Any:
    # `filter` with the type check as its predicate: the loop in C, a long call's thousands of turns
    return list(filter(dict.__instancecheck__, value)) if isinstance(value, list) else value


T = TypeVar("T")
# A list of vendor objects in which a non-object item is skipped rather than failing the list.
ObjectList = Annotated[list[T], BeforeValidator(_objects_only)]


_MAX_REPAIRS = 8


def parse_model(model: type[VendorModelT], payload: Any) -> VendorModelT:
    """`payload` as `model`, a value of the wrong type read as absent; PayloadError when the
    payload is not a JSON object at all.

    Vendors change their payloads without notice and the raw body is archived byte for byte, so
    a surprising value costs that one fact, never the event. Valid input (the usual case) is
    validated once, in Rust; otherwise the values that failed are removed and the rest validated
    again.
    """
    if not isinstance(payload, dict):
        raise PayloadError(f"expected a JSON object, got {type(payload).__name__}")
    for _ in range(_MAX_REPAIRS):
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            payload = _without(payload, [error["loc"] for error in exc.errors()])
    return model.model_validate({})


def _without(data: Any, paths: list[tuple[int | str, ...]]) -> Any:
    """A copy of `data` with the value at each path removed (a path stops where `data` does)."""
    heads: dict[Any, list[tuple[int | str, ...]]] = {}
    for path in paths:
        if path:
            heads.setdefault(path[0], []).append(path[1:])
    if isinstance(data, dict):
        return {k: _without(v, heads[k]) if k in heads and all(heads[k]) else v for k, v in data.items() if not _ends(k, heads)}
    if isinstance(data, list):
        return [_without(v, heads[i]) if i in heads and all(heads[i]) else v for i, v in enumerate(data) if not _ends(i, heads)]
    return data


def _ends(key: Any, heads: dict[Any, list[tuple[int | str, ...]]]) -> bool:
    # The failing value is this one itself, or the path goes on into something that is not a
    # container (a union member's name, say): remove it here.
    return key in heads and any(not rest for rest in heads[key])


VendorModelT = TypeVar("VendorModelT", bound=VendorModel)


_CONTROL_CHARACTER = re.compile("[\x00-\x1f]")


def require_session_id(value: Any) -> str:
    """A usable session id, or PayloadError: without one the event cannot be filed."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise PayloadError("no session id in payload")
    text = value.strip()
    if len(text) > 256 or _CONTROL_CHARACTER.search(text):
        raise PayloadError("session id is not a plausible identifier")
    _session_id_read.set(text)
    return text


# The session id the parse under way has read (require_session_id), for a body that then fails:
# one naming a forgotten session is answered forgotten, not quarantined (DESIGN.md "Erasure").
_session_id_read: ContextVar[str | None] = ContextVar("callvault_session_id_read", default=None)


@contextmanager
def reading_session_id() -> Iterator[Callable[[], str | None]]:
    """Around one parse: yields what tells the session id that parse read before it failed (None
    when it never got that far). Every vendor reads its id through `require_session_id`, so no
    vendor module has to say it."""
    token = _session_id_read.set(None)
    try:
        yield _session_id_read.get
    finally:
        _session_id_read.reset(token)


def agent(agent_id: str | None, name: str | None) -> Agent | None:
    """The agent, when the event names it at all."""
    return Agent(id=agent_id, name=name) if agent_id or name else None


def compact(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` without the absent (None) ones: absent facts are not stored."""
    return {k: v for k, v in values.items() if v is not None}


def signed_url_expiry(url: str | None) -> str | None:
    """When a signed URL stops working, where the URL itself says so: S3 SigV4 (`X-Amz-Date` +
    `X-Amz-Expires`), Google (`X-Goog-Date` + `X-Goog-Expires`) or an epoch `Expires` (CloudFront,
    SigV2). None when it does not say or cannot be read."""
    if not url:
        return None
    try:
        query = {name.lower(): values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    except ValueError:
        return None
    for vendor in ("amz", "goog"):
        signed, lifetime = query.get(f"x-{vendor}-date"), query.get(f"x-{vendor}-expires")
        if signed and lifetime and lifetime.isascii() and lifetime.isdigit() and len(lifetime) <= 9:
            try:
                start = datetime.strptime(signed, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            except ValueError:
                return None
            return format_utc(start + timedelta(seconds=int(lifetime)))
    expires = query.get("expires")
    return utc_iso(expires) if expires and expires.isascii() and expires.isdigit() and len(expires) <= 11 else None


# Per-call metrics (models.CallMetrics): each vendor's `metrics_of` reads its final report once,
# apart from the transcript's mapping, as plain JSON: a surprising value costs only that value.

_INFINITY = float("inf")


def json_at(value: Any, *path: str) -> Any:
    """`value[path[0]][path[1]]...` through JSON objects; None where one is missing or not an object."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def objects(value: Any) -> list[dict[str, Any]]:
    """The JSON objects of a list (anything else: none)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The `fraction` percentile of `values`, linear between the closest ranks (numpy's default); None for none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * fraction
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 3)


NUMBER_TYPES = (int, float)  # JSON's numbers, by exact type: a boolean is not one


@dataclass(slots=True)
class TalkTime:
    """Seconds spoken by each side, summed over its turns that say when they began and ended
    (None for a side none of whose turns say it)."""

    agent: float | None = None
    customer: float | None = None

    def add(self, agent_side: bool, seconds: float | None) -> None:
        """Count a turn that lasted `seconds` (None, negative or infinite: skipped)."""
        if seconds is not None and 0 <= seconds < _INFINITY:
            if agent_side:
                self.agent = (self.agent or 0.0) + seconds
            else:
                self.customer = (self.customer or 0.0) + seconds

    def span(self, agent_side: bool, start: Any, end: Any) -> None:
        """Count a turn from `start` to `end` (seconds into the call; JSON numbers, else skipped)."""
        if type(start) in NUMBER_TYPES and type(end) in NUMBER_TYPES:
            self.add(agent_side, end - start)

    def seconds(self) -> tuple[float | None, float | None]:
        """(agent, customer), to the millisecond."""
        return (
            round(self.agent, 3) if self.agent is not None else None,
            round(self.customer, 3) if self.customer is not None else None,
        )


def call_metrics(**reported: Any) -> CallMetrics | None:
    """The metrics a vendor reports, each one named (None where this report does not say it):
    a report missing one is partial. None when the report tells none of them."""
    if all(value is None for value in reported.values()):
        return None
    return CallMetrics(**reported)
