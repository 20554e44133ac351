"""The call browser (DESIGN.md "Call browser"): plain HTML, CSS and JavaScript shipped in this
package, over the public read API only. Served by `make dev` beside the API, and by `callvault ui
--url` for a deployed stack (reads signed with the user's AWS credentials, proxy.py).

Local routes besides the pages: `GET /ui/raw/{vendor}/{session_id}/{event_id}` answers the raw
payload of one of the session's events: the session is read through the read API, and the
`raw_s3_uri` it names is read with the caller's own credentials (moto's locally; the user's IAM
rights in AWS), so nothing here reads what the API and IAM would not give.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).parent
STATIC = {name: HERE / name for name in ("callvault.css", "common.js", "list.js", "call.js")}
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".html": "text/html; charset=utf-8"}
# Scripts and styles from callvault only; media from anywhere S3 may serve a presigned URL
# (https, or moto on loopback locally); the page is never framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "media-src 'self' https: http://127.0.0.1:* http://localhost:*; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
NOT_FOUND_PAGE = b"<!doctype html><html lang=en><title>Not found</title><p>No such page. <a href=/ui/>Calls</a></html>"
_RAW = re.compile(r"/ui/raw/([^/]+)/([^/]+)/([^/]+)")

# (status, body) of GET /sessions/{vendor}/{session_id} through the read API.
SessionReader = Callable[[str, str], tuple[int, bytes]]
# The bytes at an s3:// URI, read with the caller's credentials; raises RawUnreadable.
RawReader = Callable[[str], bytes]


class RawUnreadable(Exception):
    """The raw payload could not be read (no such object, or the credentials may not read it)."""


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    body: bytes = b""


def is_ui_path(path: str) -> bool:
    return path == "/ui" or path.startswith("/ui/")


def own_host(headers: Mapping[str, str], port: int) -> bool:
    """True when the request is addressed to this server on loopback: a page from another name
    that resolves here (DNS rebinding) must not read calls through it."""
    host = next((value for name, value in headers.items() if name.lower() == "host"), "")
    return host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}")


def same_origin_write(headers: Mapping[str, str], port: int) -> bool:
    """True unless a browser says the request comes from another site (Sec-Fetch-Site, Origin):
    a page elsewhere must not erase calls through this server."""
    lowered = {name.lower(): value for name, value in headers.items()}
    site = lowered.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = lowered.get("origin")
    return origin is None or origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}")


def _json(status: int, body: dict[str, Any]) -> Page:
    return Page(status, {"content-type": "application/json"}, json.dumps(body).encode())


def refused_host() -> Page:
    return _json(421, {"error": "this server answers only requests addressed to its own 127.0.0.1:port"})


@dataclass
class Ui:
    """The call browser's pages and local routes, for one server."""

    read_session: SessionReader
    read_raw: RawReader
    vendors: list[str] = field(default_factory=list)
    first_send: str = ""  # the command that sends a first call here (`make dev`'s), shown by an empty list

    def handle(self, method: str, target: str, headers: Mapping[str, str], port: int) -> Page:
        """The answer to a request under /ui; refused unless addressed to this server (`port`)."""
        if not own_host(headers, port):
            return refused_host()
        path = urlsplit(target).path
        if method not in ("GET", "HEAD"):
            return _json(405, {"error": "the call browser's pages are read-only"})
        if path == "/ui":
            return Page(308, {"location": "/ui/"})
        if path == "/ui/":
            return self._page("index.html")
        if path.startswith("/ui/sessions/") and path.count("/") >= 4:
            return self._call_page(path)
        if path.startswith("/ui/static/") and path.removeprefix("/ui/static/") in STATIC:
            file = STATIC[path.removeprefix("/ui/static/")]
            return Page(200, self._headers(_TYPES[file.suffix]), file.read_bytes())
        raw = _RAW.fullmatch(path)
        if raw:
            return self._raw(*(unquote(part) for part in raw.groups()))
        return Page(
            404, self._headers(_TYPES[".html"]), b"<!doctype html><title>Not found</title><p>No such page. <a href=/ui/>Calls</a>"
        )

    def _headers(self, content_type: str) -> dict[str, str]:
        return {
            "content-type": content_type,
            "cache-control": "no-cache",
            "content-security-policy": CONTENT_SECURITY_POLICY,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
        }

    def _page(self, name: str, status: int = 200, fields: Mapping[str, str] | None = None) -> Page:
        from callvault.models import Status

        values = {
            "vendors": ",".join(self.vendors),
            "statuses": ",".join(s.value for s in Status),
            "first_send": html.escape(self.first_send),
            **(fields or {}),
        }
        text = (HERE / name).read_text()
        for field_name, value in values.items():
            text = text.replace("{{" + field_name + "}}", value)
        return Page(status, self._headers(_TYPES[".html"]), text.encode())

    def _call_page(self, path: str) -> Page:
        """A call's page, its session read on the server: an unknown call is a 404 page that says
        so (with or without JavaScript), a known one arrives with its JSON (no second read)."""
        parts = path.split("/")  # "", "ui", "sessions", vendor, session id
        vendor, session_id = unquote(parts[3]), unquote("/".join(parts[4:]))
        status, body = self.read_session(vendor, session_id)
        if status == 404:
            said = f"No call {session_id!r} from {vendor} is stored: it never arrived, or it was erased."
            fields = {"title": "Call not found", "status": html.escape(said), "state": "not-found", "session": ""}
            return self._page("call.html", 404, fields)
        # In a JSON script block, "<" escaped: a transcript cannot close the block.
        embedded = body.decode().replace("<", "\\u003c") if status == 200 else ""
        fields = {"title": "Call", "status": "Loading…", "state": "found" if status == 200 else "unread", "session": embedded}
        return self._page("call.html", 200, fields)

    def _raw(self, vendor: str, session_id: str, event_id: str) -> Page:
        status, body = self.read_session(vendor, session_id)
        if status != 200:
            return Page(status, {"content-type": "application/json"}, body)
        events = json.loads(body).get("events", [])
        uri = next((e["raw_s3_uri"] for e in events if e.get("event_id") == event_id), None)
        if uri is None:
            return _json(404, {"error": f"session {session_id!r} has no event {event_id!r}"})
        try:
            raw = self.read_raw(uri)
        except RawUnreadable as exc:
            return _json(502, {"error": str(exc)})
        # Shown as text, never run: a payload is data from a vendor.
        headers = self._headers("text/plain; charset=utf-8") | {"content-disposition": "inline"}
        return Page(200, headers, raw)


def s3_raw_reader(s3: Any) -> RawReader:
    """A RawReader over `s3` (a boto3 S3 client with the caller's credentials)."""
    from botocore.exceptions import BotoCoreError, ClientError

    def read(uri: str) -> bytes:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            hint = " (your AWS credentials need s3:GetObject on the archive's raw/*)" if code == "AccessDenied" else ""
            raise RawUnreadable(f"S3 answered {code} for {uri}{hint}") from None
        except BotoCoreError as exc:
            raise RawUnreadable(f"S3 could not be read: {type(exc).__name__}") from None
        return body

    return read
