"""`callvault`: the local stack and the tools around it.

callvault dev [--port 3000] [--moto-port 5000]
callvault send FILE [--vendor V] [--webhook W] [--url URL]
callvault reconcile --vendor V [--since ISO8601]
callvault fake-api --vendor V [--port N]
callvault sessions list|get ...
callvault replay --vendor V ...
callvault forget --vendor V --session S [--bucket B --table T]
callvault archive ls|get ...
callvault events [--count N] [--redrive]

Every command finds the local stack the same way (`console.local_stack`: flags, else PORT and
MOTO_PORT, else 3000 and 5000); a user's mistake is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import re
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote, urlencode, urlsplit

from callvault_local import sample_audio
from callvault_local.console import (
    LocalStack,
    UserError,
    add_local_options,
    add_storage_options,
    local_stack,
    not_running,
    port_option,
    vendor_name,
    webhook_name,
)

DEFAULT_URL = "http://127.0.0.1:{port}"
VENDOR_HELP = "e.g. cozmox (any case; a mistake lists them)"


class Unreachable(UserError):
    """Nothing answered at a URL."""

    def __init__(self, url: str, reason: object) -> None:
        super().__init__(f"cannot reach {url}: {reason}", status=1)


@dataclass(frozen=True)
class Request:
    """What FILE holds: the body to send, and the route an API Gateway event names (else None)."""

    body: bytes
    route: tuple[str, str] | None = None  # (vendor, webhook) of an event's `/webhooks/{vendor}/{webhook}`


def read_request(path: Path) -> Request:
    """The bytes to send from FILE: a vendor payload as is, or the body of an API Gateway event
    (`events/<function>.json`) with the route it names. UserError when it cannot be read or is not JSON."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    try:
        loaded = json.loads(raw)
    except ValueError as exc:
        where = f" (line {exc.lineno}, column {exc.colno}: {exc.msg})" if isinstance(exc, json.JSONDecodeError) else ""
        raise UserError(f"{path} is not JSON{where}") from None
    if isinstance(loaded, dict) and loaded.get("version") == "2.0" and "requestContext" in loaded and "body" in loaded:
        body = loaded.get("body") or ""
        found = re.fullmatch(r"/webhooks/([^/]+)/([^/]+)", str(loaded.get("rawPath", "")))
        return Request(
            base64.b64decode(body) if loaded.get("isBase64Encoded") else str(body).encode(),
            (found.group(1), found.group(2)) if found else None,
        )
    return Request(raw)


def request_body(path: Path) -> bytes:
    """The bytes to send from FILE (see `read_request`)."""
    return read_request(path).body


def route_of(vendor: str | None, webhook: str | None, named: tuple[str, str] | None, file: Path) -> tuple[str, str]:
    """The vendor and webhook to send to: as given, else as the event file names them, else the
    vendor's only webhook. UserError when the options and the file disagree, or there is a choice to make."""
    if named is not None:
        for option, given, expected in (("--vendor", vendor, named[0]), ("--webhook", webhook, named[1])):
            if given is not None and given.strip().lower() != expected:
                raise UserError(f"{file} is an event for /webhooks/{named[0]}/{named[1]}, not {option} {given}")
        vendor, webhook = vendor or named[0], webhook or named[1]
    if vendor is None:
        raise UserError("give --vendor (or an events/ file, which names its route)")
    vendor = vendor_name(vendor)
    if webhook is not None:
        return vendor, webhook_name(vendor, webhook)
    webhooks = vendor_webhooks()[vendor]
    if len(webhooks) > 1:
        raise UserError(f"{vendor} has {len(webhooks)} webhooks: give --webhook, one of: {', '.join(webhooks)}")
    return vendor, webhooks[0]


def vendor_webhooks() -> dict[str, list[str]]:
    """Each vendor's webhooks, by name."""
    from callvault import vendors

    return {vendor: sorted(vendors.adapter(vendor).webhooks) for vendor in sorted(vendors.known())}


def webhooks_help() -> str:
    """The webhook list `send --help` ends with."""
    lines = ["webhooks (--webhook is needed only where a vendor has several):"]
    lines += [f"  {vendor:<14} {', '.join(webhooks)}" for vendor, webhooks in vendor_webhooks().items()]
    return "\n".join(lines) + "\n"


def vendor_secret(vendor: str) -> str:
    """The secret to sign with: the first of `CALLVAULT_SECRET_<VENDOR>`, else the local default."""
    from callvault.secrets import parse_secret_value

    configured = parse_secret_value(os.environ.get(secret_variable(vendor), ""))
    return configured[0] if configured else f"dev-{vendor}-secret"


def secret_variable(vendor: str) -> str:
    return f"CALLVAULT_SECRET_{vendor.upper()}"


def refused_secret_hint(vendor: str, deployed: bool) -> str:
    """What a 401 says about the secret `send` signed with (never its value) and how to change it."""
    from callvault.secrets import parse_secret_value

    variable = secret_variable(vendor)
    if parse_secret_value(os.environ.get(variable, "")):
        used = f"signed with {variable} (its first value)"
    else:
        used = f"signed with the dev default dev-{vendor}-secret ({variable} is not set)"
    local = "a secret the stack accepts (`make dev` lists them)"
    where = f"the value of the stack's {vendor.capitalize()}Secret" if deployed else local
    return f"{used}: set {variable} to {where}"


def webhook_url(vendor: str, webhook: str, url: str | None, port: int) -> str:
    """Where to post: `--url` as given when it has a path beyond `/`, else the route under it
    (so the stack's `ApiUrl` output works as is), else the local stack."""
    route = f"/webhooks/{vendor}/{webhook}"
    if not url:
        return DEFAULT_URL.format(port=port) + route
    if urlsplit(url).path.strip("/"):
        return url
    return url.rstrip("/") + route


def send(file: Path, vendor: str | None, webhook: str | None, url: str | None, stack: LocalStack) -> int:
    request = read_request(file)
    vendor, webhook = route_of(vendor, webhook, request.route, file)
    adapter = importlib.import_module(f"callvault.vendors.{vendor}").ADAPTER
    # A sample's recording link names the local stack's sample audio: on the port of the stack it goes to.
    body = request.body if url else sample_audio.pointed_at(request.body, stack.port)
    target = webhook_url(vendor, webhook, url, stack.port)
    headers = {"content-type": "application/json", "user-agent": "callvault-send", **adapter.sign(body, vendor_secret(vendor))}
    try:
        status, text = post(target, body, headers)
    except Unreachable:
        if url:
            raise
        raise not_running(stack, target) from None
    said = _api_json(target, status, text)
    if not 200 <= status < 300:  # the sender's mistake (a wrong secret, say): one line, on stderr
        message = said.get("error") or said.get("message") or json.dumps(said)
        if status == 401:
            message += f"; {refused_secret_hint(vendor, deployed=bool(url))}"
        raise UserError(f"POST {target} -> {status}: {message}", status=1)
    print(f"POST {target} -> {status}")
    print(text)
    return 0


def _api_json(url: str, status: int, text: str) -> dict[str, Any]:
    """A callvault (or API Gateway) answer: a JSON object. Anything else came from another server
    on that port (moto's, given as the API's port, typically): UserError saying so."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        raise UserError(
            f"{origin} answered HTTP {status}, but not as callvault's API does: is that the moto port? "
            "The API is on --port / PORT (3000 by default), moto on --moto-port / MOTO_PORT",
            status=1,
        )
    return body


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 30) -> tuple[int, str]:
    """POST and return status and body text, for any status."""
    return http("POST", url, body, headers, timeout)


def http(method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float = 30) -> tuple[int, str]:
    """One request; its status and body text, for any status. Unreachable when nothing answers."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise UserError(f"not an http(s) URL: {url}")
    request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above  # nosec B310
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except urllib.error.URLError as exc:
        raise Unreachable(url, exc.reason) from None
    except (TimeoutError, ConnectionError) as exc:
        raise Unreachable(url, exc) from None


def sigv4_headers(method: str, url: str) -> dict[str, str]:
    """Headers that sign a request to a deployed read API (API Gateway, `execute-api`) with the
    caller's AWS credentials; the region is read from the URL, else the caller's default."""
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = boto3.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise UserError("no AWS credentials found to sign the request with (AWS_PROFILE, or `aws configure`)")
    from callvault_local.ui.proxy import execute_api_region

    region = execute_api_region(urlsplit(url).hostname or "", session.region_name) or "us-east-1"
    request = AWSRequest(method=method, url=url, headers={"accept": "application/json"})
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
    return dict(request.headers.items())


def read_api(path: str, query: dict[str, Any], url: str | None, stack: LocalStack) -> tuple[int, Any]:
    """GET `path` of the read API (local, open; or deployed, signed) and its decoded JSON body."""
    base = (url or stack.url).rstrip("/")
    base = base.removesuffix("/sessions")  # the SessionsUrl output works as well as ApiUrl
    target = base + path
    params = {k: v for k, v in query.items() if v is not None}
    if params:
        target += "?" + urlencode(params)
    headers = sigv4_headers("GET", target) if url else {"accept": "application/json"}
    try:
        status, text = http("GET", target, None, headers)
    except Unreachable:
        if url:
            raise
        raise not_running(stack, target) from None
    body = _api_json(target, status, text)
    if status != 200:  # the API's own words: {"error": ...} from the function, {"message": ...} from API Gateway
        said = body.get("error") or body.get("message")
        raise UserError(f"HTTP {status}: {said or text.strip()[:200]}", status=1)
    return status, body


def sessions_command(args: Any) -> int:
    stack = local_stack(args)
    if args.action == "get":
        vendor = vendor_name(args.vendor)
        _, body = read_api(f"/sessions/{quote(vendor, safe='')}/{quote(args.session_id, safe='')}", {}, args.url, stack)
        print(json.dumps(body, indent=2))
        return 0
    query = {
        "vendor": vendor_name(args.vendor) if args.vendor else None,
        "status": args.status,
        "created_after": args.created_after,
        "created_before": args.created_before,
        "limit": args.limit,
        "cursor": args.cursor,
    }
    while True:
        _, page = read_api("/sessions", query, args.url, stack)
        if not args.all:
            print(json.dumps(page, indent=2))
            return 0
        for item in page["items"]:  # one JSON object per line: pipe it to jq
            print(json.dumps(item))
        if not page.get("next_cursor"):
            return 0
        query["cursor"] = page["next_cursor"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (usage is one `--help` away)."""

    # Text added at the end of `--help`, made only when help is shown (it imports every vendor).
    help_footer: Callable[[], str] | None = None

    def format_help(self) -> str:
        text = super().format_help()
        return f"{text}\n{self.help_footer()}" if self.help_footer else text

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("callvault")
    except PackageNotFoundError:  # run from a checkout without installing
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="callvault", description="callvault's local stack and tools")
    parser.add_argument("--version", action="version", version=f"callvault {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the stack on loopback, on an embedded moto backend")
    add_local_options(dev)

    send_cmd = commands.add_parser("send", help="post a vendor payload, signed the way that vendor signs")
    send_cmd.add_argument("file", type=Path, help="a vendor payload, or an API Gateway event from events/ (its route is used)")
    send_cmd.add_argument("--vendor", help=VENDOR_HELP + "; default: the route of an events/ file")
    send_cmd.add_argument(
        "--webhook", help="the vendor's webhook (any case); default: its only one, or the route of an events/ file"
    )
    send_cmd.add_argument("--url", help="the stack's ApiUrl, or a full webhook URL (default: the local stack)")
    add_local_options(send_cmd)
    send_cmd.help_footer = webhooks_help

    sessions = commands.add_parser("sessions", help="read stored sessions (the read API)")
    actions = sessions.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list sessions, newest first")
    listing.add_argument("--vendor", help=VENDOR_HELP)
    listing.add_argument("--status", choices=["queued", "ringing", "in_progress", "ended"])
    listing.add_argument("--created-after", help="ISO 8601, exclusive")
    listing.add_argument("--created-before", help="ISO 8601, exclusive")
    listing.add_argument("--limit", type=int, help="page size, 1-100 (default 20)")
    listing.add_argument("--cursor", help="next_cursor of the previous page")
    listing.add_argument("--all", action="store_true", help="follow every page; one JSON session per line")
    getting = actions.add_parser("get", help="one whole session: transcript, events, recording")
    getting.add_argument("vendor")
    getting.add_argument("session_id")
    for command in (listing, getting):
        command.add_argument("--url", help="a deployed stack's ApiUrl (signed with SigV4); default: the local stack")
        add_local_options(command)

    replay = commands.add_parser("replay", help="file archived payloads again (after a parser fix), idempotently")
    replay.add_argument("--vendor", required=True, help=VENDOR_HELP)
    replay.add_argument("--since", help="received from: ISO 8601, or a day YYYY-MM-DD (UTC), inclusive")
    replay.add_argument("--until", help="received until: ISO 8601, or a day YYYY-MM-DD (UTC, the whole day), inclusive")
    replay.add_argument("--quarantine", action="store_true", help="also the bodies that could not be filed (quarantine/)")
    add_storage_options(replay)

    archive = commands.add_parser("archive", help="what the archive bucket holds: raw payloads, recordings")
    archive_actions = archive.add_subparsers(dest="action", required=True)
    listing = archive_actions.add_parser("ls", help="list keys (and sizes) under a prefix")
    listing.add_argument("prefix", nargs="?", default="", help="e.g. raw/cozmox/ (default: everything)")
    fetching = archive_actions.add_parser("get", help="write one object's bytes to stdout")
    fetching.add_argument("key", help="a key as `ls` prints it, or its s3:// URI")
    for command in (listing, fetching):
        add_storage_options(command, table=False)

    forget = commands.add_parser("forget", help="erase one session everywhere; a tombstone keeps it forgotten")
    forget.add_argument("--vendor", required=True, help=VENDOR_HELP)
    forget.add_argument("--session", required=True, help="the vendor's session id")
    add_storage_options(forget)

    reconcile = commands.add_parser("reconcile", help="pull what the webhooks missed from a vendor's own API (one pass)")
    reconcile.add_argument("--vendor", required=True, help="a vendor with a pull API, e.g. voiceos (any case)")
    reconcile.add_argument("--since", help="ISO 8601 start (default: the vendor's watermark minus the overlap, or 24 h)")
    add_storage_options(reconcile)

    browse = commands.add_parser("ui", help="the call browser on loopback for a deployed stack (reads signed with SigV4)")
    browse.add_argument("--url", required=True, help="the stack's ApiUrl output")
    browse.add_argument("--port", type=port_option, default=8700, help="loopback port to serve on (default 8700)")
    browse.add_argument("--region", help="the API's region (default: from the URL, else your AWS configuration)")

    events = commands.add_parser("events", help="print the local stack's events out as they go on the bus, one JSON per line")
    events.add_argument("--count", type=int, metavar="N", help="stop after N events (default: until Ctrl-C)")
    events.add_argument(
        "--redrive", action="store_true", help="send the outbound webhooks waiting in the dead-letter queue again, then exit"
    )
    add_local_options(events)

    fake_api = commands.add_parser("fake-api", help="a loopback fake of a vendor's API to reconcile from (trying it out)")
    fake_api.add_argument("--vendor", required=True, help="the vendor whose API to fake, e.g. voiceos (any case)")
    fake_api.add_argument("--port", type=port_option, default=0, help="its own port (default: a free one)")
    fake_api.add_argument(
        "--moto-port",
        type=port_option,
        metavar="N",
        help="the local stack's moto port, for the reconcile command it prints (else MOTO_PORT, else 5000)",
    )
    fake_api.add_argument("--key", default="fake-api-key", help="the API key it accepts")
    fake_api.add_argument("--conversations", type=int, default=50, help="calls it lists (created over the last hour)")
    query = commands.add_parser("sql", help="query calls in SQL (DuckDB locally, Athena for a deployed stack)")
    query.add_argument("query", help='one query in Athena\'s SQL, e.g. "SELECT vendor, count(*) FROM sessions GROUP BY 1"')
    query.add_argument(
        "--format", choices=["table", "csv", "json"], default="table", help="table (default), csv, or json: one object per line"
    )
    query.add_argument("--workgroup", help="a deployed stack's AnalyticsWorkGroupName (with --database): run in Athena")
    query.add_argument("--database", default="callvault", help="its AnalyticsDatabaseName (default: callvault)")
    query.add_argument("--stack", help="a deployed stack's name: its workgroup and database from its outputs")
    add_local_options(query)
    return parser


def _dev(args: Any) -> int:
    from callvault_local import dev

    stack = local_stack(args, serving=True)
    return dev.serve(stack.port, stack.moto_port)


def _send(args: Any) -> int:
    return send(args.file, args.vendor, args.webhook, args.url, local_stack(args))


def _replay(args: Any) -> int:
    from callvault_local import replay

    return replay.run(args)


def _forget(args: Any) -> int:
    from callvault_local import forget

    return forget.run(args)


def _reconcile(args: Any) -> int:
    from callvault_local import reconcile

    return reconcile.run(args)


def _fake_api(args: Any) -> int:
    from callvault_local import fake_vendor_apis

    vendor = vendor_name(args.vendor)
    if vendor not in fake_vendor_apis.VENDORS:
        raise UserError(f"no fake API for {vendor}: one of {', '.join(sorted(fake_vendor_apis.VENDORS))}")
    # Its --port is its own: the stack the printed commands go to is the environment's and --moto-port's.
    stack = local_stack(argparse.Namespace(port=None, moto_port=args.moto_port))
    return fake_vendor_apis.serve(vendor, args.port, args.key, args.conversations, stack)


def _ui(args: Any) -> int:
    from callvault_local.ui import proxy

    return proxy.serve(args.url, args.port, args.region)


def _events(args: Any) -> int:
    import threading

    from callvault_local import bus
    from callvault_local.console import require_moto
    from callvault_local.stack import NOTIFY_DEAD_LETTER_QUEUE, configure_environment

    if args.count is not None and args.count < 1:
        raise UserError("--count must be 1 or more")
    stack = local_stack(args)
    require_moto(stack)
    configure_environment(stack.moto_port)
    from botocore.exceptions import ClientError

    try:
        if args.redrive:
            print(f"events: {bus.redrive()} webhook(s) sent again from {NOTIFY_DEAD_LETTER_QUEUE}")
            return 0
        bus.watch(lambda line: print(line, flush=True), threading.Event(), count=args.count)
    except ClientError as exc:
        if "NonExistentQueue" in str(exc) or "QueueDoesNotExist" in str(exc):
            what = "outbound webhooks (start `make dev` with CALLVAULT_NOTIFY_URL set)" if args.redrive else "events out"
            raise UserError(f"the local stack at {stack.moto_url} has no {what}", status=1) from None
        raise
    return 0


def _sql(args: Any) -> int:
    from callvault_local import sql

    return sql.run(args)


def _archive(args: Any) -> int:
    from callvault_local import stored

    return stored.run(args)


COMMANDS: dict[str, Callable[[Any], int]] = {
    "dev": _dev,
    "send": _send,
    "sessions": sessions_command,
    "replay": _replay,
    "forget": _forget,
    "archive": _archive,
    "reconcile": _reconcile,
    "fake-api": _fake_api,
    "ui": _ui,
    "events": _events,
    "sql": _sql,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(argv)
    except BrokenPipeError:
        # The reader went away (`callvault sessions list | head`): stop quietly, as `cat` does. The
        # rest of the output goes nowhere, so the interpreter's own flush at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _run(argv: Sequence[str] | None) -> int:
    args: Any = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"callvault {args.command}: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print(f"callvault {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # AWS refused (no credentials, no such bucket, access denied): the user's setup, not a bug.
        if type(exc).__module__.partition(".")[0] in ("botocore", "boto3"):
            print(f"callvault {args.command}: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
