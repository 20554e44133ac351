"""Shared test setup: fake AWS credentials (no test reaches AWS or any network), the
stack's resources in moto, and a way to call a webhook route exactly as API Gateway would."""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callvault_local import deployed
from callvault_local.offline import isolate

isolate()
# Every handler the tests load runs as deployed: the template's environment, each AWS call checked
# against its role's policy (callvault_local.deployed). Before boto3 makes any session.
deployed.activate()

from hypothesis import settings as hypothesis_settings  # noqa: E402

# No per-example deadline (hypothesis' default is 200 ms): on a loaded machine one slow example
# failed a property that holds. Speed belongs in bench/, not in timed tests.
hypothesis_settings.register_profile("callvault", deadline=None)
hypothesis_settings.load_profile("callvault")

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from callvault import aws as callvault_aws  # noqa: E402
from callvault import config, secrets, store, vendors  # noqa: E402
from callvault_local import moto_patches, stack  # noqa: E402
from callvault_local.apigw import LambdaContext, http_event  # noqa: E402
from callvault_local.functions import load_handler  # noqa: E402
from callvault_local.streams import StreamDelivery, deliveries  # noqa: E402
from callvault_local.template import routes  # noqa: E402
from tests.media import MediaHost  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAYLOADS = ROOT / "events" / "payloads"
# The vendors' documentation examples, placeholders (`<string>`) and all: parser tests, not samples to send.
DOC_EXAMPLES = ROOT / "tests" / "fixtures" / "doc-examples"
VENDORS = tuple(sorted(vendors.known()))
SECRETS = {vendor: f"test-{vendor}-secret" for vendor in VENDORS}
CURSOR_KEY = "test-cursor-key"


@pytest.fixture(scope="module")
def media() -> Iterator[MediaHost]:
    """A loopback host serving the test recordings (tests/media.py), one per test module."""
    host = MediaHost()
    yield host
    host.close()


def payload_path(name: str) -> Path:
    """A sample vendor payload's file, e.g. `cozmox/hang`; `doc-examples/<vendor>` for a vendor's documented example."""
    return ROOT / "tests" / "fixtures" / f"{name}.json" if name.startswith("doc-examples/") else PAYLOADS / f"{name}.json"


def payload(name: str) -> dict[str, Any]:
    """A sample vendor payload, e.g. `payload("cozmox/hang")`."""
    loaded: dict[str, Any] = json.loads(payload_path(name).read_text())
    return loaded


def adapter_for(vendor: str) -> Any:
    return importlib.import_module(f"callvault.vendors.{vendor}").ADAPTER


def handler_for(path: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler the template wires to `path`, loaded from its function folder."""
    (route,) = [r for r in routes() if r.path == path]
    return load_handler(route.code_uri, route.handler, route.function)


def function_handler(function: str) -> Callable[[dict[str, Any], Any], Any]:
    """The handler of the template's function `function` (a logical id), run as deployed."""
    found = deployed.functions()[function]
    return load_handler(found.code_uri, found.handler, function)


def put_secret(owner: str, value: str) -> None:
    """Put `value` in the local stack's secret of `owner` (a vendor, `cursor`, `vapiapikey`...),
    where a function reads it as deployed (its CALLVAULT_SECRET_* stand-ins are not passed on),
    and seen by the next read."""
    created = stack.last_created()
    assert created is not None, "no local stack"
    boto3.client("secretsmanager").put_secret_value(SecretId=created.secret_arns[owner], SecretString=value)
    from aws_lambda_powertools.utilities.parameters import clear_caches

    clear_caches()  # type: ignore[no-untyped-call]  # as once the functions' secret cache has expired


@dataclass
class Response:
    status: int
    json: dict[str, Any]


def post_webhook(
    vendor: str,
    webhook: str,
    body: bytes | dict[str, Any] | list[Any],
    headers: dict[str, str] | None = None,
    *,
    sign: bool = True,
    secret: str | None = None,
) -> Response:
    """POST to `/webhooks/{vendor}/{webhook}` through its real handler; signed as the vendor signs
    unless `sign` is False."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"content-type": "application/json"}
    if sign:
        all_headers.update(adapter_for(vendor).sign(raw, secret or SECRETS[vendor]))
    all_headers.update(headers or {})
    path = f"/webhooks/{vendor}/{webhook}"
    result = handler_for(path)(http_event("POST", path, raw, all_headers), LambdaContext())
    assert result["headers"]["content-type"] == "application/json"
    return Response(result["statusCode"], json.loads(result["body"]))


def reset_caches() -> None:
    callvault_aws.reset()
    config.settings.cache_clear()
    secrets._last_forced_refresh = 0.0


@pytest.fixture(scope="session", autouse=True)
def serialized_moto() -> Iterator[None]:
    """Make in-process moto answer one request at a time, as a real service appears to.

    moto's transactions are not thread-safe (a cancelled one restores a copy of the whole
    table, erasing concurrent writes); DynamoDB itself serializes them. Without this, the
    concurrency tests would test moto.
    """
    from moto.core.botocore_stubber import BotocoreStubber

    moto_patches.apply()
    lock = threading.Lock()
    original = BotocoreStubber.__call__

    def serialized(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    BotocoreStubber.__call__ = serialized  # type: ignore[method-assign]
    yield
    BotocoreStubber.__call__ = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def iam_checked() -> Iterator[None]:
    """Fails the test if a function made an AWS call its role's policy refuses. A test that means
    to provoke a refusal takes it with `deployed.take_refusals()`."""
    deployed.take_refusals()
    yield
    left = deployed.take_refusals()
    if left:
        pytest.fail("AWS would refuse these calls (template.yaml's IAM):\n" + "\n".join(sorted({str(r) for r in left})))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """CALLVAULT_IAM_REPORT=DIR: what this process checked, for `python -m callvault_local.deployed DIR`."""
    directory = os.environ.get("CALLVAULT_IAM_REPORT")
    if directory:
        deployed.write_report(Path(directory), os.environ.get("PYTEST_XDIST_WORKER", "main"))


@pytest.fixture
def env_secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for vendor, value in SECRETS.items():
        monkeypatch.setenv(f"CALLVAULT_SECRET_{vendor.upper()}", value)
    monkeypatch.setenv("CALLVAULT_SECRET_CURSOR", CURSOR_KEY)
    return SECRETS


@pytest.fixture
def local_stack(env_secrets: dict[str, str]) -> Iterator[stack.LocalStack]:
    """The stack's table, bucket and secrets in a fresh moto backend."""
    with mock_aws():
        reset_caches()
        yield stack.create(boto3.Session(), secrets={**env_secrets, "cursor": CURSOR_KEY})
        reset_caches()


@dataclass
class Stored:
    """What the stack holds: for assertions on exactly what was written."""

    table: str
    bucket: str

    def items(self) -> list[dict[str, Any]]:
        from boto3.dynamodb.types import TypeDeserializer

        client = boto3.client("dynamodb")
        pages = client.get_paginator("scan").paginate(TableName=self.table)  # tests only: no Scan in the app
        deserialize = TypeDeserializer().deserialize
        return [{k: deserialize(v) for k, v in item.items()} for page in pages for item in page["Items"]]

    def session(self, vendor: str, session_id: str) -> dict[str, Any]:
        (item,) = [i for i in self.items() if i["pk"] == store.session_pk(vendor, session_id) and i["sk"] == "SESSION"]
        return item

    def transcript(self, session: dict[str, Any]) -> list[dict[str, Any]]:
        """A session item's transcript, read back as the read API reads it (from the raw body it points at)."""
        from callvault import sessions

        vendor, session_id = session["vendor"], session["session_id"]
        found = sessions.get_session(vendor, session_id)
        assert found is not None
        return [dict(turn) for turn in found.transcript]

    def events(self, vendor: str, session_id: str) -> list[dict[str, Any]]:
        return [i for i in self.items() if i["pk"] == store.session_pk(vendor, session_id) and i["sk"].startswith("EVENT#")]

    def keys(self, prefix: str = "") -> list[str]:
        pages = boto3.client("s3").get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix)
        return [v["Key"] for page in pages for v in page.get("Versions", [])]

    def body(self, key: str) -> bytes:
        return boto3.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()


@pytest.fixture
def stored(local_stack: stack.LocalStack) -> Stored:
    return Stored(local_stack.table_name, local_stack.bucket_name)


@pytest.fixture
def recording_timeout_seconds() -> str | None:
    """RECORDING_TIMEOUT_SECONDS for `copier` (None: the function's own); a module overrides it."""
    return None


@pytest.fixture
def copier(stored: Stored, monkeypatch: pytest.MonkeyPatch, recording_timeout_seconds: str | None) -> StreamDelivery:
    """The recording function, fed from the table's stream (loopback allowed, as in `make dev`)."""
    monkeypatch.setenv("RECORDING_ALLOW_LOOPBACK", "true")
    if recording_timeout_seconds is not None:
        monkeypatch.setenv("RECORDING_TIMEOUT_SECONDS", recording_timeout_seconds)
    config.settings.cache_clear()
    (delivery,) = deliveries(stored.table, only="RecordingsArchiveFunction", backoff_seconds=0, log=lambda _: None)
    return delivery
