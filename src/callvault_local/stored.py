"""`callvault archive ls|get`: what the archive bucket holds (raw payloads, quarantined bodies,
recordings), on the local stack or a deployed one, with nothing but the project's own environment."""

from __future__ import annotations

import sys
from typing import Any

from callvault_local.console import UserError, use_storage


def run(args: Any) -> int:
    from callvault import aws
    from callvault.config import settings

    use_storage(args)
    bucket = settings().bucket_name
    if args.action == "ls":
        listed = 0
        for page in aws.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=args.prefix):
            for item in page.get("Contents", []):
                print(f"{item['Size']:>12}  {item['Key']}")
                listed += 1
        print(f"{listed} object(s) in s3://{bucket}/{args.prefix}", file=sys.stderr)
        return 0
    key = args.key.removeprefix(f"s3://{bucket}/")
    if key.startswith("s3://"):
        raise UserError(f"{args.key} is not in this stack's bucket s3://{bucket} (--bucket names another)")
    try:
        body = aws.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    except aws.s3().exceptions.NoSuchKey:
        raise UserError(f"no object {key!r} in s3://{bucket} (`callvault archive ls` lists them)") from None
    sys.stdout.buffer.write(body)
    sys.stdout.flush()
    return 0
