"""`callvault`: the local stack and the tools around it.

callvault dev [--port 3000] [--moto-port 5000]
callvault send FILE --vendor V --webhook W [--url URL]
callvault forget --vendor V --session S [--bucket B --table T]
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_URL = "http://127.0.0.1:{port}"


def _port(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value and value.isdigit() else default


def request_body(path: Path) -> bytes:
    """The bytes to send from FILE: a vendor payload as is, or the body of an API Gateway event
    (`events/<function>.json`)."""
    raw = path.read_bytes()
    try:
        loaded = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(loaded, dict) and loaded.get("version") == "2.0" and "requestContext" in loaded and "body" in loaded:
        body = loaded.get("body") or ""
        return base64.b64decode(body) if loaded.get("isBase64Encoded") else str(body).encode()
    return raw


def vendor_secret(vendor: str) -> str:
    """The secret to sign with: the first of `CALLVAULT_SECRET_<VENDOR>`, else the local default."""
    from callvault.secrets import parse_secret_value

    configured = parse_secret_value(os.environ.get(f"CALLVAULT_SECRET_{vendor.upper()}", ""))
    return configured[0] if configured else f"dev-{vendor}-secret"


def webhook_url(vendor: str, webhook: str, url: str | None, port: int) -> str:
    """Where to post: `--url` as given when it has a path beyond `/`, else the route under it
    (so the stack's `ApiUrl` output works as is), else the local stack."""
    route = f"/webhooks/{vendor}/{webhook}"
    if not url:
        return DEFAULT_URL.format(port=port) + route
    if urlsplit(url).path.strip("/"):
        return url
    return url.rstrip("/") + route


def send(file: Path, vendor: str, webhook: str, url: str | None, port: int) -> int:
    try:
        adapter = importlib.import_module(f"callvault.vendors.{vendor}").ADAPTER
    except ModuleNotFoundError:
        print(f"callvault send: unknown vendor {vendor!r}", file=sys.stderr)
        return 2
    if webhook not in adapter.webhooks:
        print(
            f"callvault send: {vendor} has no webhook {webhook!r} (one of: {', '.join(sorted(adapter.webhooks))})",
            file=sys.stderr,
        )
        return 2
    body = request_body(file)
    target = webhook_url(vendor, webhook, url, port)
    headers = {"content-type": "application/json", "user-agent": "callvault-send", **adapter.sign(body, vendor_secret(vendor))}
    status, text = post(target, body, headers)
    print(f"POST {target} -> {status}")
    print(text)
    return 0 if 200 <= status < 300 else 1


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 30) -> tuple[int, str]:
    """POST and return status and body text, for any status."""
    return http("POST", url, body, headers, timeout)


def http(method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float = 30) -> tuple[int, str]:
    """One request; its status and body text, for any status."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url}")
    request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above  # nosec B310
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def sigv4_headers(method: str, url: str) -> dict[str, str]:
    """Headers that sign a request to a deployed read API (API Gateway, `execute-api`) with the
    caller's AWS credentials; the region is read from the URL, else the caller's default."""
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = boto3.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise SystemExit("callvault sessions: no AWS credentials found to sign the request with")
    host = urlsplit(url).hostname or ""
    found = re.fullmatch(r"[^.]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?", host)
    region = found.group(1) if found else session.region_name or "us-east-1"
    request = AWSRequest(method=method, url=url, headers={"accept": "application/json"})
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
    return dict(request.headers.items())


def read_api(path: str, query: dict[str, Any], url: str | None, port: int) -> tuple[int, Any]:
    """GET `path` of the read API (local, open; or deployed, signed) and its decoded JSON body."""
    base = (url or DEFAULT_URL.format(port=port)).rstrip("/")
    base = base.removesuffix("/sessions")  # the SessionsUrl output works as well as ApiUrl
    target = base + path
    params = {k: v for k, v in query.items() if v is not None}
    if params:
        target += "?" + urlencode(params)
    headers = sigv4_headers("GET", target) if url else {"accept": "application/json"}
    status, text = http("GET", target, None, headers)
    try:
        return status, json.loads(text)
    except ValueError:
        return status, {"error": text}


def sessions_command(args: Any) -> int:
    if args.action == "get":
        status, body = read_api(
            f"/sessions/{quote(args.vendor, safe='')}/{quote(args.session_id, safe='')}", {}, args.url, args.port
        )
        print(json.dumps(body, indent=2))
        return 0 if status == 200 else 1
    query = {
        "vendor": args.vendor,
        "status": args.status,
        "created_after": args.created_after,
        "created_before": args.created_before,
        "limit": args.limit,
        "cursor": args.cursor,
    }
    while True:
        status, page = read_api("/sessions", query, args.url, args.port)
        if status != 200:
            print(json.dumps(page, indent=2), file=sys.stderr)
            return 1
        if not args.all:
            print(json.dumps(page, indent=2))
            return 0
        for item in page["items"]:  # one JSON object per line: pipe it to jq
            print(json.dumps(item))
        if not page.get("next_cursor"):
            return 0
        query["cursor"] = page["next_cursor"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callvault", description="callvault's local stack and tools")
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the stack on loopback, on an embedded moto backend")
    dev.add_argument("--port", type=int, default=_port("PORT", 3000), help="HTTP API port (PORT, default 3000)")
    dev.add_argument(
        "--moto-port", type=int, default=_port("MOTO_PORT", 5000), help="moto endpoint port (MOTO_PORT, default 5000)"
    )

    send_cmd = commands.add_parser("send", help="post a vendor payload, signed the way that vendor signs")
    send_cmd.add_argument("file", type=Path, help="a vendor payload, or an API Gateway event from events/")
    send_cmd.add_argument("--vendor", required=True)
    send_cmd.add_argument("--webhook", required=True)
    send_cmd.add_argument("--url", help="the stack's ApiUrl, or a full webhook URL (default: the local stack)")
    send_cmd.add_argument("--port", type=int, default=_port("PORT", 3000), help="local stack port (PORT, default 3000)")

    sessions = commands.add_parser("sessions", help="read stored sessions (the read API)")
    actions = sessions.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list sessions, newest first")
    listing.add_argument("--vendor")
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
        command.add_argument("--port", type=int, default=_port("PORT", 3000), help="local stack port (PORT, default 3000)")

    replay = commands.add_parser("replay", help="file archived payloads again (after a parser fix), idempotently")
    replay.add_argument("--vendor", required=True)
    replay.add_argument("--since", help="first day, YYYY-MM-DD (UTC)")
    replay.add_argument("--until", help="last day, YYYY-MM-DD (UTC)")
    replay.add_argument("--quarantine", action="store_true", help="also the bodies that could not be filed (quarantine/)")
    replay.add_argument("--bucket", help="a deployed stack's ArchiveBucketName (default: the local stack)")
    replay.add_argument("--table", help="a deployed stack's SessionsTableName")
    replay.add_argument("--moto-port", type=int, default=_port("MOTO_PORT", 5000), help="local moto endpoint port")

    forget = commands.add_parser("forget", help="erase one session everywhere; a tombstone keeps it forgotten")
    forget.add_argument("--vendor", required=True)
    forget.add_argument("--session", required=True, help="the vendor's session id")
    forget.add_argument("--bucket", help="a deployed stack's ArchiveBucketName (default: the local stack)")
    forget.add_argument("--table", help="a deployed stack's SessionsTableName")
    forget.add_argument("--moto-port", type=int, default=_port("MOTO_PORT", 5000), help="local moto endpoint port")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args: Any = build_parser().parse_args(argv)
    if args.command == "dev":
        from callvault_local import dev

        return dev.serve(args.port, args.moto_port)
    if args.command == "send":
        if not args.file.is_file():
            print(f"callvault send: no such file: {args.file}", file=sys.stderr)
            return 2
        return send(args.file, args.vendor, args.webhook, args.url, args.port)
    if args.command == "sessions":
        return sessions_command(args)
    if args.command == "replay":
        from callvault_local import replay

        return replay.run(args)
    if args.command == "forget":
        from callvault_local import forget

        return forget.run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
