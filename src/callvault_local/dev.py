"""`make dev`: the stack on loopback, no Docker (DESIGN.md "Local (contract)").

Two servers in one process:
- moto as a real endpoint (`MOTO_PORT`), holding the table, bucket and secrets created from
  `template.yaml`; boto3 anywhere (the handlers, the CLI, `aws --endpoint-url`) can use it.
- an HTTP API on `PORT` serving every HttpApi route of `template.yaml` through the very handler
  the template names, with an API Gateway v2 event built as API Gateway builds it.

Nothing here is hand-listed: a route added to the template is served on the next start.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn, TextIO
from urllib.parse import unquote, urlsplit

from callvault_local.apigw import LambdaContext, http_event
from callvault_local.bus import LocalBus
from callvault_local.console import DEFAULT_MOTO_PORT, DEFAULT_PORT, LocalStack, UserError
from callvault_local.functions import load_handler
from callvault_local.stack import configure_environment, local_secrets, local_vendors
from callvault_local.streams import StreamDelivery
from callvault_local.template import Route, routes
from callvault_local.ui import Ui, is_ui_path

# API Gateway HTTP APIs take payloads up to 10 MB; the handlers answer 413 above their own limit.
MAX_REQUEST_BYTES = 10 * 1024 * 1024
# A second signal sooner than this after the first is the same Ctrl-C delivered twice (see `serve`).
SAME_SIGNAL_WINDOW_S = 1.0

# What an HTTP API answers a request that matches no route (method and path).
NOT_FOUND_BODY = b'{"message":"Not Found"}'


# Given a WSGI request to moto, an error response to send instead (status, headers, body), or None.
FaultInjector = Callable[[dict[str, Any]], tuple[str, list[tuple[str, str]], bytes] | None]


class _Serialized:
    """A WSGI app answering one request at a time.

    moto's DynamoDB transactions are not atomic across threads (a cancelled one restores a copy
    of the table, erasing concurrent writes); DynamoDB itself isolates them. Connections are
    still accepted concurrently.
    """

    def __init__(self, app: Callable[..., Any], faults: FaultInjector | None = None) -> None:
        self._app = app
        self._faults = faults
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        injected = self._faults(environ) if self._faults else None
        if injected is not None:  # an AWS error instead of moto's answer (the soak harness)
            status, headers, body = injected
            start_response(status, headers)
            return [body]
        with self._lock:
            # The body is produced under the lock too: moto builds some responses lazily.
            return list(self._app(environ, start_response))


def start_moto(port: int, host: str = "127.0.0.1", faults: FaultInjector | None = None) -> tuple[Any, int]:
    """moto's server on `host:port` in a daemon thread; returns the server and its bound port.
    UserError naming the port when it is taken."""
    # Bound here, not by werkzeug (on a taken port it prints two lines and exits the process), and
    # before moto is imported (seconds): a taken port is said at once.
    with _binding(port, "MOTO_PORT"):
        listener = socket.create_server((host, port), backlog=128)
    with listener:
        import logging

        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        from callvault_local import moto_patches

        moto_patches.apply()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per moto request would drown ours
        app = _Serialized(DomainDispatcherApplication(create_backend_app), faults)
        server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler, fd=listener.fileno())
    threading.Thread(target=server.serve_forever, name="moto", daemon=True).start()
    return server, server.server_address[1]


@dataclass(frozen=True)
class _CompiledRoute:
    route: Route
    pattern: re.Pattern[str]


def _compile(route: Route) -> _CompiledRoute:
    # `{name}` is one path segment, `{name+}` the rest of the path (API Gateway's greedy form).
    regex = ""
    for part in re.split(r"(\{[^}]+\})", route.path):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            regex += f"(?P<{name[:-1]}>.+)" if name.endswith("+") else f"(?P<{name}>[^/]+)"
        else:
            regex += re.escape(part)
    return _CompiledRoute(route, re.compile(regex))


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    outcome: str = ""  # the body's `status` (stored, duplicate, ...) or `error`, for the log line
    extra: dict[str, Any] = field(default_factory=dict)


class LocalApi:
    """The HttpApi of `template.yaml`: routes matched as API Gateway matches them, handlers called
    one at a time (as Lambda gives each container one request; Powertools keeps per-request state
    in module globals)."""

    def __init__(self, api_routes: list[Route] | None = None) -> None:
        compiled = [_compile(r) for r in (api_routes if api_routes is not None else routes())]
        # Literal paths before parameterized ones, longer before shorter, as API Gateway prefers.
        self.routes = sorted(compiled, key=lambda c: ("{" in c.route.path, -len(c.route.path)))
        self._lock = threading.Lock()

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for compiled in self.routes:
            found = compiled.pattern.fullmatch(path)
            if found and compiled.route.method in (method, "ANY"):
                return compiled.route, found.groupdict()
        return None

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes, source_ip: str) -> Reply:
        split = urlsplit(target)
        # An HTTP API percent-decodes the path before routing it (`a%2Fb` is two segments), and
        # hands it on decoded: rawPath, requestContext.http.path and pathParameters alike.
        path = unquote(split.path)
        matched = self.match(method, path)
        if matched is None:
            # Also a known path with another method: HTTP APIs answer 404 there, not 405.
            return Reply(404, {"content-type": "application/json"}, NOT_FOUND_BODY, "no route")
        route, parameters = matched
        event = http_event(
            method,
            path,
            body,
            headers,
            route_key=f"{route.method} {route.path}",
            path_parameters=parameters or None,
            query=split.query,
            source_ip=source_ip,
        )
        handler = load_handler(route.code_uri, route.handler, route.function)
        with self._lock:
            result = handler(event, LambdaContext(route.function))
        return _reply(result)


class WithoutMetrics(io.TextIOBase):
    """stdout without the CloudWatch metrics (EMF) lines the handlers print: there is no CloudWatch
    here to read them, and POWERTOOLS_METRICS_DISABLED would keep them in memory forever instead."""

    def __init__(self, target: TextIO) -> None:
        self._target = target
        self._dropping = threading.local()

    def write(self, text: str) -> int:
        if text.startswith('{"_aws":'):
            self._dropping.line = True  # print() writes the line, then its newline
        elif text == "\n" and getattr(self._dropping, "line", False):
            self._dropping.line = False
        else:
            self._target.write(text)
        return len(text)

    def flush(self) -> None:
        self._target.flush()


def _reply(result: Any) -> Reply:
    """An API Gateway (payload 2.0) reading of what a handler returned."""
    import base64

    if not isinstance(result, dict) or "statusCode" not in result:
        # API Gateway's rule for a bare value: 200 with it as JSON.
        return Reply(200, {"content-type": "application/json"}, json.dumps(result).encode(), "")
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    outcome = ""
    if headers.get("content-type", "").startswith("application/json"):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            outcome = str(parsed["status"]) if "status" in parsed else ("error" if "error" in parsed else "")
    return Reply(int(result["statusCode"]), headers, body, outcome)


def _read_chunked(stream: Any, limit: int) -> bytes:
    body = bytearray()
    while True:
        size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return bytes(body)
        body += stream.read(size)
        stream.readline()
        if len(body) > limit:
            raise ValueError("too large")


def local_ui(api: LocalApi, first_send: str = "") -> Ui:
    """The call browser over `api`: the same handlers answer its reads, and raw payloads are read
    from the local stack's bucket (moto); `first_send`, the command its empty list suggests."""
    from urllib.parse import quote

    import boto3

    from callvault_local.ui import s3_raw_reader

    def read_session(vendor: str, session_id: str) -> tuple[int, bytes]:
        reply = api.handle("GET", f"/sessions/{quote(vendor, safe='')}/{quote(session_id, safe='')}", {}, b"", "127.0.0.1")
        return reply.status, reply.body

    return Ui(read_session, s3_raw_reader(boto3.client("s3")), local_vendors(), first_send)


def _sample_audio(method: str, target: str) -> Reply | None:
    """The sample sessions' recording (sample_audio.py), which the stack serves itself; None for any other path."""
    from callvault_local import sample_audio

    served = sample_audio.reply(method, urlsplit(target).path)
    return Reply(*served, outcome="sample audio") if served else None


def make_api_server(
    api: LocalApi,
    host: str,
    port: int,
    log: TextIO = sys.stdout,
    ui: Ui | None = None,
    listener: socket.socket | None = None,
) -> ThreadingHTTPServer:
    """An HTTP server for `api` on `host:port`, or on `listener` already bound (not started); `ui`
    serves the call browser under /ui/."""
    log_lock = threading.Lock()
    sql_mirror: list[Any] = []  # the analytics rows `callvault sql` reads, made on its first query (sql.Mirror)

    def local_sql(method: str, target: str, headers: dict[str, str], body: bytes) -> Reply | None:
        path = urlsplit(target).path
        if path != "/local/sql":  # sql.LOCAL_PATH, without importing it for every request
            return None
        from callvault_local import sql

        with log_lock:
            if not sql_mirror:
                sql_mirror.append(sql.Mirror())
        answered = sql.local_reply(sql_mirror[0], method, path, headers, body)
        return Reply(*answered, outcome="sql") if answered else None

    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "callvault-dev"

        def _handle(self) -> None:
            started = time.perf_counter()
            try:
                body = self._body()
            except ValueError:
                reply = Reply(413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}', "too large")
            else:
                try:
                    sample = _sample_audio(self.command, self.path) or local_sql(
                        self.command, self.path, dict(self.headers.items()), body
                    )
                    if sample is not None:
                        reply = sample
                    elif ui is not None and is_ui_path(urlsplit(self.path).path):
                        own_port: int = self.server.server_address[1]  # type: ignore[index,assignment,unused-ignore]
                        page = ui.handle(self.command, self.path, dict(self.headers.items()), own_port)
                        reply = Reply(page.status, page.headers, page.body, "ui")
                    else:
                        reply = api.handle(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
                except Exception as exc:  # a handler crash: Lambda would answer 500, and so does this
                    reply = Reply(500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}', "crash")
                    reply.extra["error"] = f"{type(exc).__name__}: {exc}"
            elapsed = (time.perf_counter() - started) * 1000
            line = f"{self.command} {urlsplit(self.path).path} {reply.status} {elapsed:.1f} ms {reply.outcome}".rstrip()
            if reply.extra.get("error"):
                line += f"  [{reply.extra['error']}]"
            # Logged before the reply is sent, so a client's next request never logs ahead of this one.
            with log_lock:
                print(line, file=log, flush=True)
            self._send(reply)

        def _body(self) -> bytes:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                return _read_chunked(self.rfile, MAX_REQUEST_BYTES)
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_REQUEST_BYTES:
                self.close_connection = True
                raise ValueError("too large")
            return self.rfile.read(length) if length > 0 else b""

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                if name not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        def __getattr__(self, name: str) -> Any:
            # Every method reaches the route table, as at API Gateway (an unrouted one is 404, not 501).
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), RequestHandler, bind_and_activate=listener is None)
    if listener is not None:
        server.socket.close()
        server.socket = listener
        server.server_address = listener.getsockname()
        server.server_name, server.server_port = host, server.server_address[1]
    server.daemon_threads = True
    return server


@dataclass
class DevStack:
    api_server: ThreadingHTTPServer
    moto_server: Any
    port: int
    moto_port: int
    api: LocalApi
    stopped: threading.Event = field(default_factory=threading.Event)
    streams: list[StreamDelivery] = field(default_factory=list)
    bus: LocalBus | None = None
    queue_functions: list[str] = field(default_factory=list)  # fed by an SQS queue (queues.py)

    @property
    def stream_functions(self) -> list[str]:
        return [delivery.function.name for delivery in self.streams]

    @property
    def local(self) -> LocalStack:
        """Where it listens, as every `callvault` command names it."""
        return LocalStack(self.port, self.moto_port)

    @property
    def url(self) -> str:
        return self.local.url

    @property
    def moto_url(self) -> str:
        return self.local.moto_url

    def shutdown(self) -> None:
        """Stop serving: no new request or stream record is taken (one in a handler finishes or is
        abandoned with the process; see `serve`)."""
        self.stopped.set()
        for delivery in self.streams:
            delivery.stop()
        self.api_server.shutdown()
        self.api_server.server_close()
        self.moto_server.shutdown()
        self.moto_server.server_close()


def start(
    port: int = DEFAULT_PORT,
    moto_port: int = DEFAULT_MOTO_PORT,
    log: TextIO = sys.stdout,
    *,
    faults: FaultInjector | None = None,
    streams: bool = True,
) -> DevStack:
    """Start moto and the HTTP API (in daemon threads), create the stack's resources, and return.

    `faults` may answer some of moto's requests with AWS errors; `streams` False leaves the
    stream-triggered functions (recordings) off. UserError naming the port (and its variable) when
    one is taken, said before anything slow starts (moto, the handlers)."""
    with _binding(port, "PORT"):
        api_listener = socket.create_server(("127.0.0.1", port), backlog=128)
    try:
        moto_server, moto_port = start_moto(moto_port, faults=faults)
    except BaseException:
        api_listener.close()
        raise
    configure_environment(moto_port)
    stopped = threading.Event()
    import boto3

    from callvault_local import bus, queues, stack

    session = boto3.Session(region_name=os.environ["AWS_DEFAULT_REGION"])
    stack.create(session, secrets=local_secrets())

    def say(line: str) -> None:
        print(line, file=log, flush=True)

    events_out = bus.start(session, stopped, say)  # before the streams run
    queue_fed = queues.start(session, stopped, say)  # the erasure queue's: an erasure cut short goes on
    api = LocalApi()
    for compiled in api.routes:  # import every handler now: a broken one fails the start, not a request
        load_handler(compiled.route.code_uri, compiled.route.handler, compiled.route.function)
    ui = local_ui(api, sample_send(LocalStack(api_listener.getsockname()[1], moto_port)))
    api_server = make_api_server(api, "127.0.0.1", port, log, ui, listener=api_listener)
    threading.Thread(target=api_server.serve_forever, name="api", daemon=True).start()
    dev = DevStack(api_server, moto_server, api_server.server_address[1], moto_port, api, stopped, bus=events_out)
    dev.queue_functions = [source.function for source in queue_fed]
    if streams:
        dev.streams = start_stream_deliveries(dev.stopped, log)
    return dev


@contextlib.contextmanager
def _binding(port: int, variable: str) -> Iterator[None]:
    """Binding `port`: a taken port becomes a UserError that names it and its variable."""
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        flag = "--" + variable.lower().replace("_", "-")
        raise UserError(f"port {port} ({variable}) is already in use: choose another with {variable}=N or {flag} N") from None


def start_stream_deliveries(stopped: threading.Event, log: TextIO, interval: float = 0.5) -> list[StreamDelivery]:
    """Run the template's stream-triggered functions (the recording copier) as Lambda would: a
    daemon thread per function polls the table's stream, its workers deliver (streams.py)."""
    from callvault_local.copier_log import show_copier_outcomes
    from callvault_local.stack import LOCAL_TABLE
    from callvault_local.streams import deliveries

    def say(line: str) -> None:
        print(line, file=log, flush=True)

    show_copier_outcomes(say)  # why a recording failed, in a line of the log (else only the session says)
    # Short retry waits: a sample event's unreachable vendor URL must not hold up the next ones for a minute.
    running = deliveries(LOCAL_TABLE, log=say, backoff_seconds=0.1, stopped=stopped)
    for delivery in running:
        threading.Thread(target=delivery.run, args=(interval,), name=f"{delivery.function.name}-poll", daemon=True).start()
    return running


SAMPLE_SEND = "events/payloads/cozmox/end-of-call-report.json --vendor cozmox"


def sample_send(local: LocalStack) -> str:
    """The command that sends a sample call to the stack at `local` (the banner's, the empty list's)."""
    return f"callvault send {SAMPLE_SEND}{local.flags()}"


def banner(dev: DevStack) -> str:
    """What `make dev` prints at start: every URL, the local secrets, the moto endpoint, the names."""
    from callvault_local import bus
    from callvault_local.stack import LOCAL_BUCKET, LOCAL_TABLE

    here = dev.local
    lines = ["callvault local stack", "", "Routes:"]
    lines += [f"  {c.route.method} {dev.url}{c.route.path}  ({c.route.function})" for c in dev.api.routes]
    lines += ["", "Local secrets (CALLVAULT_SECRET_<VENDOR> to change):"]
    lines += [f"  {vendor:<14} {secret}" for vendor, secret in local_secrets().items()]
    lines += [
        "",
        f"moto endpoint: {dev.moto_url}   (callvault archive ls{here.flags()})",
        f"table: {LOCAL_TABLE}   bucket: {LOCAL_BUCKET}   region: {os.environ['AWS_DEFAULT_REGION']}",
        "",
        f"Stream-triggered (recordings copied from loopback URLs too): {', '.join(dev.stream_functions) or 'none'}",
        f"Queue-triggered (an erasure cut short goes on): {', '.join(dev.queue_functions) or 'none'}",
        *(bus.banner_lines(dev.bus, here.flags()) if dev.bus else []),
        "",
        f"Call browser: {dev.url}/ui/",
        "",
        "Try, in another terminal (`source .venv/bin/activate` puts callvault on PATH):",
        f"  {sample_send(here)}",
        f"  callvault sessions list{here.flags()}",
        "Ctrl-C stops.",
    ]
    return "\n".join(lines)


def serve(port: int = DEFAULT_PORT, moto_port: int = DEFAULT_MOTO_PORT) -> int:
    """Run until interrupted (Ctrl-C or SIGTERM); the exit status.

    A second Ctrl-C or SIGTERM exits at once; one within a second of the first is the same Ctrl-C
    arriving twice (the terminal sends it to the whole group, and `uv run`, between make and this
    process, forwards its own copy) and is not counted. Either way the process ends within moments: after
    the servers stop it leaves with `os._exit`, not waiting for work still in a thread (a handler
    in a download's backoff, an S3 upload's transfer threads, which Python would otherwise join
    at exit): the local stack keeps nothing that outlives the process.
    """
    import signal

    stopped = threading.Event()
    first_signal_at: list[float] = []

    def on_signal(signum: int, _frame: Any) -> None:
        if not first_signal_at:
            first_signal_at.append(time.monotonic())
            stopped.set()
        elif time.monotonic() - first_signal_at[0] >= SAME_SIGNAL_WINDOW_S:
            _exit_now(1, f"{signal.Signals(signum).name} again: stopping now")

    for signum in (signal.SIGINT, signal.SIGTERM):  # set before anything starts: no window for a traceback
        signal.signal(signum, on_signal)
    try:
        dev = start(port, moto_port)
    except UserError as exc:  # a port in use, typically
        print(f"callvault dev: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"callvault dev: cannot start: {exc}", file=sys.stderr)
        return 1
    sys.stdout = WithoutMetrics(sys.stdout)  # keep the console to one line per request
    print(banner(dev), flush=True)
    while not stopped.wait(0.5):
        pass
    print("stopping", flush=True)
    dev.shutdown()
    return _exit_now(0)


def _exit_now(status: int, message: str | None = None) -> NoReturn:
    """Flush what was printed and end the process now, daemon or not, whatever threads hold."""
    if message:
        print(message, file=sys.stderr, flush=True)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing left to say
            stream.flush()
    os._exit(status)
