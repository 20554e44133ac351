"""`callvault forget --vendor V --session S`: erase one session everywhere (DESIGN.md "Erasure").

The same erasure as `DELETE /sessions/{vendor}/{session_id}` (`callvault.erasure`), run with the
caller's own credentials: against the local stack by default, or a deployed stack's bucket and
table (`--bucket`/`--table`, the stack's outputs). Prints what was removed, as the API answers.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any


def _who(deployed: bool) -> str:
    """Who erased, for the log line: the caller's IAM identity in AWS, the local user otherwise."""
    if deployed:
        import boto3

        arn: str = boto3.client("sts").get_caller_identity()["Arn"]
        return arn
    return f"local:{getpass.getuser()}"


def run(args: Any) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from callvault_local.console import local_stack, use_storage, vendor_name

    vendor = vendor_name(args.vendor)  # case-insensitive; an unknown one is listed against the known
    use_storage(args)  # the deployed stack's bucket and table, else the running local stack
    from callvault import erasure
    from callvault.errors import StorageUnavailable
    from callvault.sessions import InvalidParameter, UnknownVendor

    try:
        done = erasure.erase(vendor, args.session, who=_who(bool(args.bucket)))
    except (InvalidParameter, UnknownVendor) as exc:
        print(f"callvault forget: {exc}", file=sys.stderr)
        return 2
    except StorageUnavailable as exc:
        where = (
            f"bucket {args.bucket} / table {args.table}"
            if args.bucket
            else f"the local stack (moto port {local_stack(args).moto_port})"
        )
        print(f"callvault forget: cannot reach {where}: {exc}; is it running? erasing again finishes the job", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:
        print(f"callvault forget: AWS refused: {exc}", file=sys.stderr)
        return 1
    if done is None:
        print(f"callvault forget: no session {args.session!r} for {vendor}", file=sys.stderr)
        return 1
    print(done.answer().model_dump_json(indent=2))
    return 0
