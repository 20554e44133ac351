"""`callvault ui --url <ApiUrl>`: the call browser on loopback for a deployed stack.

Every read (and the erase) goes to the stack's read API signed with SigV4 with the user's own AWS
credentials, so the stack stays IAM-only; the recording route's redirect is handed to the
browser as it is (the audio comes straight from S3, never through here). The server answers only
requests addressed to its own 127.0.0.1:port (no DNS rebinding) and refuses cross-site writes.
"""

from __future__ import annotations

import errno
import http.client
import re
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, urlsplit

from callvault_local.console import UserError
from callvault_local.ui import Page, Ui, is_ui_path, own_host, refused_host, s3_raw_reader, same_origin_write

DEFAULT_UI_PORT = 8700
# The read API's routes, and only those: nothing else of the stack is reachable through here.
_GET_PATHS = re.compile(r"/sessions(/[^/]+/[^/]+(/recording)?)?")
_DELETE_PATH = re.compile(r"/sessions/[^/]+/[^/]+")
_PASSED_HEADERS = ("content-type", "location", "cache-control")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def execute_api_region(host: str, default: str | None) -> str | None:
    """The region an API Gateway host names (`{id}.execute-api.{region}.amazonaws.com`), else `default`."""
    found = re.fullmatch(r"[^.]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?", host)
    return found.group(1) if found else default


@dataclass
class SignedApi:
    """The deployed read API at `base`, every request signed for `region` with `credentials`."""

    base: str
    region: str
    credentials: Any  # botocore Credentials (refreshable: frozen afresh for each request)

    def request(self, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
        """`method` on `target` (path and query, percent-encoded as the browser sent it), signed."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        url = self.base + target
        signed = AWSRequest(method=method, url=url, headers={"accept": "application/json"})
        SigV4Auth(self.credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(signed)
        parts = urlsplit(url)
        connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = connection_type(parts.netloc, timeout=30)
        try:
            connection.request(method, target_of(url), headers=dict(signed.headers.items()))
            reply = connection.getresponse()  # redirects are not followed: the browser follows /recording's
            body = reply.read()
        except OSError as exc:
            message = f'{{"error": "the API at {self.base} could not be reached: {type(exc).__name__}"}}'
            return 502, {"content-type": "application/json"}, message.encode()
        finally:
            connection.close()
        headers = {name: value for name in _PASSED_HEADERS if (value := reply.getheader(name)) is not None}
        return reply.status, headers, body


def target_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def signed_api(url: str, region: str | None = None, session: Any = None) -> SignedApi:
    """The API at `url` signed with `session`'s credentials (default: the user's). UserError for a
    URL that is not an API's, or when there are no credentials or no region to sign for."""
    import boto3

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise UserError(
            f"not an API URL: {url!r} (the stack's ApiUrl output, e.g. https://abc123.execute-api.eu-west-1.amazonaws.com)"
        )
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise UserError(f"{url} is plain http: the API's URL is https")
    session = session or boto3.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise UserError("no AWS credentials found to sign the reads with (AWS_PROFILE, or `aws configure`)")
    region = region or execute_api_region(parts.hostname, session.region_name)
    if region is None:
        raise UserError(f"cannot tell the region of {parts.hostname}: pass --region or set AWS_REGION")
    base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/').removesuffix('/sessions')}"
    return SignedApi(base, region, credentials)


def _page_reply(handler: BaseHTTPRequestHandler, page: Page) -> None:
    handler.send_response(page.status)
    for name, value in page.headers.items():
        handler.send_header(name, value)
    handler.send_header("content-length", str(len(page.body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(page.body)


def make_server(api: SignedApi, port: int, s3: Any, log: Any = sys.stdout) -> ThreadingHTTPServer:
    """The call browser for `api` on 127.0.0.1:`port` (not started); raw payloads read with `s3`.
    UserError when the port is taken."""
    from callvault import vendors

    def read_session(vendor: str, session_id: str) -> tuple[int, bytes]:
        status, _, body = api.request("GET", f"/sessions/{quote(vendor, safe='')}/{quote(session_id, safe='')}")
        return status, body

    ui = Ui(read_session, s3_raw_reader(s3), sorted(vendors.known()))
    log_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "callvault-ui"

        def _answer(self) -> None:
            own_port: int = self.server.server_address[1]  # type: ignore[index,assignment,unused-ignore]
            headers = dict(self.headers.items())
            path = urlsplit(self.path).path
            if not own_host(headers, own_port):
                page = refused_host()
            elif is_ui_path(path):
                page = ui.handle(self.command, self.path, headers, own_port)
            elif path == "/" and self.command == "GET":
                page = Page(302, {"location": "/ui/"})
            elif self.command == "GET" and _GET_PATHS.fullmatch(path):
                page = Page(*api.request("GET", self.path))
            elif self.command == "DELETE" and _DELETE_PATH.fullmatch(path):
                if same_origin_write(headers, own_port):
                    page = Page(*api.request("DELETE", self.path))
                else:
                    page = Page(403, {"content-type": "application/json"}, b'{"error": "cross-site request refused"}')
            else:
                page = Page(404, {"content-type": "application/json"}, b'{"error": "no such route"}')
            with log_lock:
                print(f"{self.command} {path} {page.status}", file=log, flush=True)
            _page_reply(self, page)

        def __getattr__(self, name: str) -> Any:
            if name.startswith("do_"):
                return self._answer
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} is already in use: choose another with --port N") from None
        raise
    server.daemon_threads = True
    return server


def serve(url: str, port: int, region: str | None = None) -> int:
    """Run `callvault ui` until Ctrl-C."""
    import boto3

    api = signed_api(url, region)
    session = boto3.Session()
    server = make_server(api, port, session.client("s3", region_name=api.region))
    print(f"callvault ui: http://127.0.0.1:{server.server_address[1]}/ui/  (reads {api.base}, signed for {api.region})")
    print("Ctrl-C stops.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
