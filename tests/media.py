"""A vendor's media host on loopback, serving real audio made here (recordings tests)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from callvault_local.sample_audio import make_wav

WAV = make_wav(2.0)
TALK_WAV = make_wav(30.0)  # long enough to seek in (the call browser's tests)
BIG_WAV = make_wav(700.0)  # ~11 MB: more than one 8 MB part of the multipart upload


class _LoopbackServer:
    server: ThreadingHTTPServer
    url: str

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class MediaHost(_LoopbackServer):
    """The vendor's media server, on loopback."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.authorization: dict[str, str | None] = {}  # path -> the Authorization header it last got
        self.closing = threading.Event()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                host.hits[path] += 1
                host.authorization[path] = self.headers.get("authorization")
                routes = {
                    "/call.wav": lambda: self._send(200, WAV, "audio/wav"),
                    "/big.wav": lambda: self._send(200, BIG_WAV, "audio/x-wav"),
                    "/talk.wav": lambda: self._send(200, TALK_WAV, "audio/wav"),
                    "/octet": lambda: self._send(200, WAV, "application/octet-stream"),
                    "/page.html": lambda: self._send(200, b"<html>not a recording</html>", "text/html"),
                    "/missing.wav": lambda: self._send(404, b"no", "text/plain"),
                    "/gone.wav": lambda: self._send(403, b"AccessDenied: Request has expired", "application/xml"),
                    "/redirect-ok": lambda: self._redirect("/call.wav"),
                    "/redirect-private": lambda: self._redirect("http://10.1.2.3/call.wav"),
                    "/redirect-metadata": lambda: self._redirect("http://169.254.169.254/latest/meta-data/"),
                    "/redirect-loop": lambda: self._redirect("/redirect-loop"),
                    "/flaky.wav": lambda: (
                        self._send(503, b"busy", "text/plain") if host.hits[path] <= 2 else self._send(200, WAV, "audio/wav")
                    ),
                    "/unavailable.wav": lambda: self._send(503, b"busy", "text/plain"),
                    "/slow.wav": self._slow,
                    "/stall.wav": self._stall,
                    "/endless": self._endless,
                }
                routes.get(path, lambda: self._send(404, b"", "text/plain"))()

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("location", location)
                self.send_header("content-length", "0")
                self.end_headers()

            def _slow(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "audio/wav")
                self.send_header("content-length", str(len(WAV)))
                self.end_headers()
                try:
                    for start in range(0, len(WAV), 1000):
                        self.wfile.write(WAV[start : start + 1000])
                        self.wfile.flush()
                        time.sleep(0.5)
                except OSError:
                    pass  # the copier gave up: as it should

            def _stall(self) -> None:  # headers, then nothing until the host closes
                self.send_response(200)
                self.send_header("content-type", "audio/wav")
                self.send_header("content-length", str(len(WAV)))
                self.end_headers()
                self.wfile.flush()
                host.closing.wait()

            def _endless(self) -> None:  # no content-length, more than any cap
                self.send_response(200)
                self.send_header("content-type", "audio/wav")
                self.end_headers()
                try:
                    self.wfile.write(WAV[:44])
                    for _ in range(10_000):
                        self.wfile.write(b"\0" * 65536)
                except OSError:
                    pass

            def log_message(self, *_: Any) -> None:
                pass

        self.server, self.url = _serve(Handler)

    def close(self) -> None:
        self.closing.set()
        super().close()


class VapiApi(_LoopbackServer):
    """Vapi's call-recording endpoint on loopback, `GET /call/{id}/{kind}-recording`: with the
    private key, a 302 to the short-lived file at `location(call_id, kind)`; without it, 401."""

    def __init__(self, key: str, location: Any) -> None:
        self.requests: list[tuple[str, str | None]] = []  # (path, Authorization)
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append((self.path, self.headers.get("authorization")))
                parts = self.path.split("/")
                if len(parts) != 4 or parts[1] != "call" or not parts[3].endswith("-recording"):
                    self._answer(404, {})
                elif self.headers.get("authorization") != f"Bearer {key}":
                    self._answer(401, {})
                else:
                    self._answer(302, {"location": location(parts[2], parts[3].removesuffix("-recording"))})

            def _answer(self, status: int, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in {**headers, "content-length": "0"}.items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server, self.url = _serve(Handler)


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
