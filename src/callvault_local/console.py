"""What every `callvault` command shares: where the local stack is, and a user's mistake as one line.

- Where: `--port`/`--moto-port`, else `PORT`/`MOTO_PORT`, else 3000/5000, the same variables
  `make dev` takes (`add_local_options` on a command's parser, `local_stack(args)` in its code).
- Mistakes: raise `UserError("...")`; `callvault`'s main prints `callvault <command>: ...` on stderr
  and exits non-zero, never with a traceback.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_PORT, DEFAULT_MOTO_PORT = 3000, 5000
# Each port: its option's attribute, its environment variable, its default.
_PORTS = (("port", "PORT", DEFAULT_PORT), ("moto_port", "MOTO_PORT", DEFAULT_MOTO_PORT))


class UserError(Exception):
    """A mistake the user can fix (or a stack that is not there): one line, exit status `status`."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def port_number(text: str) -> int:
    """A TCP port from the command line or the environment (0 = any free one)."""
    if not text.strip().isdigit() or int(text) > 65535:
        raise ValueError(f"not a port number: {text!r}")
    return int(text)


def port_option(text: str) -> int:
    """argparse's `type` for a port option."""
    try:
        return port_number(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@dataclass(frozen=True)
class LocalStack:
    """Where the local stack listens: its API and its moto endpoint, on loopback."""

    port: int
    moto_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def flags(self) -> str:
        """The options that point a command at this stack ("" on the default ports)."""
        return "".join(f" --{name.replace('_', '-')} {value}" for name, _, value in self._not_default())

    def variables(self) -> str:
        """The same as environment assignments, for `make dev` ("" on the default ports)."""
        return " ".join(f"{variable}={value}" for _, variable, value in self._not_default())

    def _not_default(self) -> list[tuple[str, str, int]]:
        return [(name, variable, getattr(self, name)) for name, variable, default in _PORTS if getattr(self, name) != default]


def add_local_options(parser: argparse.ArgumentParser) -> None:
    """`--port` and `--moto-port`, for any command that talks to (or runs) the local stack."""
    parser.add_argument(
        "--port", type=port_option, metavar="N", help=f"the local stack's API port (else PORT, else {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--moto-port",
        type=port_option,
        metavar="N",
        help=f"the local stack's moto endpoint port (else MOTO_PORT, else {DEFAULT_MOTO_PORT})",
    )


def local_stack(args: Any, environ: Mapping[str, str] = os.environ, *, serving: bool = False) -> LocalStack:
    """The local stack a command's options and the environment name; `serving`: the command runs it
    (`callvault dev`, where 0 means any free port), else it talks to it (0 names nothing)."""
    ports = {}
    for name, variable, default in _PORTS:
        given = getattr(args, name, None)
        if given is None and environ.get(variable):
            try:
                given = port_number(environ[variable])
            except ValueError as exc:
                raise UserError(f"{variable}: {exc}") from None
        if given == 0 and not serving:
            option = "--" + name.replace("_", "-")
            raise UserError(f"{option}/{variable} 0 means any free port, for `callvault dev` only: give the port the stack took")
        ports[name] = default if given is None else given
    if ports["port"] == ports["moto_port"] != 0:
        raise UserError(f"the API and moto were both given port {ports['port']} (PORT, MOTO_PORT): give each a port of its own")
    return LocalStack(**ports)


def not_running(stack: LocalStack, url: str) -> UserError:
    """The error for a local stack that does not answer at `url`: how to start it, or point elsewhere."""
    start = f"make dev {stack.variables()}".strip()
    return UserError(
        f"no local stack answers at {url}: start it with `{start}`, or point at yours with --port/--moto-port"
        " (or PORT/MOTO_PORT)",
        status=1,
    )


def require_moto(stack: LocalStack) -> None:
    """UserError unless something listens on the stack's moto port (before any boto3 call would
    retry a refused connection for seconds and end in a traceback)."""
    try:
        socket.create_connection(("127.0.0.1", stack.moto_port), timeout=2).close()
    except OSError:
        raise not_running(stack, stack.moto_url) from None
    if _answers_as_the_api(stack.moto_url):
        raise UserError(
            f"{stack.moto_url} answers as callvault's API, not moto: the moto port is --moto-port / MOTO_PORT "
            "(5000 by default), the API's --port / PORT",
            status=1,
        )


def _answers_as_the_api(url: str) -> bool:
    """Whether `url` is callvault's API (its unrouted answer is JSON; moto's for `/` is XML)."""
    import urllib.error
    import urllib.request

    head: bytes
    try:
        with urllib.request.urlopen(url + "/", timeout=5) as response:  # noqa: S310 - a loopback http URL  # nosec B310
            head = bytes(response.read(64))
    except urllib.error.HTTPError as exc:
        head = bytes(exc.read(64))
    except OSError:
        return False
    return head.lstrip().startswith(b"{")


def vendor_name(given: str) -> str:
    """The vendor `given` names, matched case-insensitively; UserError listing them when none."""
    from callvault import vendors

    known = sorted(vendors.known())
    found = [name for name in known if name == given.strip().lower()]
    if not found:
        raise UserError(f"unknown vendor {given!r}; one of: {', '.join(known)}")
    return found[0]


def webhook_name(vendor: str, given: str) -> str:
    """`vendor`'s webhook `given` names (case-insensitive); UserError listing them when none."""
    import importlib

    webhooks: list[str] = sorted(importlib.import_module(f"callvault.vendors.{vendor}").ADAPTER.webhooks)
    found = [name for name in webhooks if name == given.strip().lower()]
    if not found:
        raise UserError(f"{vendor} has no webhook {given!r}; one of: {', '.join(webhooks)}")
    return found[0]


def add_storage_options(parser: argparse.ArgumentParser, *, table: bool = True) -> None:
    """`--bucket` (and `--table`) for a deployed stack, and the local stack's ports otherwise."""
    parser.add_argument("--bucket", help="a deployed stack's ArchiveBucketName (default: the local stack)")
    if table:
        parser.add_argument("--table", help="a deployed stack's SessionsTableName (with --bucket)")
    add_local_options(parser)


def use_storage(args: Any, environ: Any = os.environ) -> None:
    """Point callvault's storage code (callvault.aws, settings) at the deployed stack named by
    `--bucket`/`--table` (with the caller's AWS credentials), else at the running local stack."""
    wants_table = hasattr(args, "table")
    if args.bucket or getattr(args, "table", None):
        if wants_table and not (args.bucket and args.table):
            raise UserError("--bucket and --table go together (the stack's ArchiveBucketName and SessionsTableName)")
        environ["BUCKET_NAME"] = args.bucket
        if wants_table:
            environ["TABLE_NAME"] = args.table
        return
    from callvault_local.stack import configure_environment

    stack = local_stack(args, environ)
    require_moto(stack)
    configure_environment(stack.moto_port, environ)
