"""`callvault`: the local stack and the tools around it.

callvault dev [--port 3000] [--moto-port 5000]
callvault send FILE --vendor V --webhook W [--url URL]
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    configured = os.environ.get(f"CALLVAULT_SECRET_{vendor.upper()}", "")
    first = next((s.strip() for s in configured.split(",") if s.strip()), "")
    return first or f"dev-{vendor}-secret"


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
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url}")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above  # nosec B310
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


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
    return 2


if __name__ == "__main__":
    sys.exit(main())
