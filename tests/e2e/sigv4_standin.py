"""A stand-in for a deployed read API that demands SigV4 as API Gateway's IAM authorizer does:
each request's signature is recomputed with the known credentials and compared; a good one is
passed to the local stack's API, anything else is answered 403."""

from __future__ import annotations

import hmac
import http.client
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY, SECRET_KEY = "AKIDSTANDIN", "stand-in-secret-key"
REGION = "eu-west-1"
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})"
)


def verified(method: str, host: str, target: str, headers: dict[str, str]) -> bool:
    """True when the request carries a valid SigV4 signature by ACCESS_KEY for execute-api in REGION."""
    found = _AUTHORIZATION.fullmatch(headers.get("authorization", ""))
    if not found or found["key"] != ACCESS_KEY or found["service"] != "execute-api" or found["region"] != REGION:
        return False
    amz_date = headers.get("x-amz-date", "")
    if not amz_date.startswith(found["day"]):
        return False
    names = found["signed"].split(";")
    request = AWSRequest(method=method, url=f"http://{host}{target}", headers={n: headers.get(n, "") for n in names})
    request.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "execute-api", REGION)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    return hmac.compare_digest(expected, found["signature"])


@dataclass
class StandIn:
    url: str
    seen: list[tuple[str, str, bool]] = field(default_factory=list)  # method, path, signature valid


@contextmanager
def stand_in_api(backend: str) -> Iterator[StandIn]:
    """The stand-in on a free loopback port, passing signed requests on to `backend` (the local API)."""
    backend_netloc = urlsplit(backend).netloc

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            good = verified(self.command, headers.get("host", ""), self.path, headers)
            stand_in.seen.append((self.command, self.path, good))
            if not good:
                self._send(403, {"content-type": "application/json"}, b'{"message":"Forbidden"}')
                return
            connection = http.client.HTTPConnection(backend_netloc, timeout=30)
            connection.request(self.command, self.path)
            reply = connection.getresponse()
            body = reply.read()
            passed = {k: v for k, v in reply.getheaders() if k.lower() in ("content-type", "location", "cache-control")}
            connection.close()
            self._send(reply.status, passed, body)

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stand_in = StandIn(f"http://127.0.0.1:{server.server_address[1]}")
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()
