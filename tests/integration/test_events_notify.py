"""Signed outbound webhooks: bus -> notify queue -> the template's NotifyFunction handler -> a
loopback receiver, verified with the `standardwebhooks` library as a receiver would."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from standardwebhooks import Webhook

from callvault import config, notify
from callvault_local import bus, deployed
from callvault_local.streams import StreamDelivery, deliveries
from tests.conftest import Stored, payload, post_webhook


@pytest.fixture(autouse=True)
def deployed_with_it_on() -> Iterator[None]:
    """The functions run as a stack deployed with this feature on (it is off by default)."""
    with deployed.parameters(NotifyUrl="https://receiver.example/callvault"):
        yield


SECRET = "whsec_" + base64.b64encode(b"a receiver's shared secret, 32 b").decode()


@dataclass
class Receiver:
    """A webhook receiver on loopback answering each POST with the next scripted status (then 200)."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.received.append((status, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/callvault"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verified(self) -> list[dict[str, Any]]:
        """Every body received, each checked with its headers by standardwebhooks (raises if one fails)."""
        return [Webhook(SECRET).verify(body, headers) for _, headers, body in self.received]


@dataclass
class Outbound:
    changes: StreamDelivery
    sender: bus.NotifySender
    local: bus.LocalBus
    log: list[str]

    def deliver(self) -> int:
        """The stream's new changes to the bus, then the sender over what the queue holds."""
        self.changes.poll()
        return self.sender.poll()

    def waiting(self, queue_url: str | None) -> list[dict[str, Any]]:
        messages = boto3.client("sqs").receive_message(QueueUrl=queue_url or "", MaxNumberOfMessages=10, VisibilityTimeout=0)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


@pytest.fixture
def outbound(stored: Stored, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Outbound]:
    monkeypatch.setenv("CALLVAULT_NOTIFY_URL", receiver.url)
    monkeypatch.setenv("CALLVAULT_NOTIFY_SECRET", SECRET)
    monkeypatch.setenv("NOTIFY_BACKOFF_SECONDS", "0")  # each retry at once: the queue's receive count is the clock here
    monkeypatch.setenv("RECORDING_ALLOW_LOOPBACK", "true")  # the receiver is on loopback
    local = bus.create(boto3.Session(), notify=True)
    environment: dict[str, str] = {}
    for name in ("CALLVAULT_NOTIFY_URL", "CALLVAULT_NOTIFY_SECRET", "NOTIFY_BACKOFF_SECONDS"):
        environment[name] = os.environ[name]
    bus.configure(local, environment)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    config.settings.cache_clear()
    (changes,) = [
        d for d in deliveries(stored.table, backoff_seconds=0, log=lambda _: None) if d.function.name == "SessionChangesFunction"
    ]
    log: list[str] = []
    yield Outbound(changes, bus.NotifySender(local.notify_queue_url or "", log=log.append), local, log)
    config.settings.cache_clear()


def end_a_call(call_id: str = "call-n") -> None:
    body = payload("cozmox/end-of-call-report")
    body["message"]["call"]["id"] = call_id
    assert post_webhook("cozmox", "server-messages", body).status == 200


def test_a_receiver_failing_twice_gets_the_event_once_more_signed(outbound: Outbound, receiver: Receiver) -> None:
    receiver.statuses = [500, 500]
    end_a_call()
    assert outbound.deliver() == 3  # two failures, hidden for their backoff (0 here), then delivered
    assert [status for status, _, _ in receiver.received] == [500, 500, 200]
    bodies = receiver.verified()  # each attempt signed afresh, each verifies
    assert bodies[0] == bodies[1] == bodies[2]
    ids = {headers["webhook-id"] for _, headers, _ in receiver.received}
    (watched,) = outbound.waiting(outbound.local.watch_queue_url)
    assert ids == {watched["detail"]["id"]}  # webhook-id is detail.id: the receiver drops repeats by it
    assert bodies[0] == {"type": "call.ended", "timestamp": watched["time"], "data": watched["detail"]}
    assert outbound.sender.poll() == 0 and len(receiver.received) == 3  # delivered: taken off the queue


def test_a_receiver_down_past_the_retry_window_leaves_it_in_the_dead_letter_queue_to_redrive(
    outbound: Outbound, receiver: Receiver
) -> None:
    receives = bus.notify_queue_settings()["RedrivePolicy"]["maxReceiveCount"]
    receiver.statuses = [503] * receives
    end_a_call()
    assert outbound.deliver() == receives  # every try the queue allows, then SQS moves it aside
    assert outbound.waiting(outbound.local.notify_queue_url) == []
    (dead,) = outbound.waiting(outbound.local.dead_letter_queue_url)
    assert dead["detail-type"] == "Call Ended"
    assert bus.redrive() == 1  # `callvault events --redrive`
    assert outbound.sender.poll() == 1
    assert [status for status, _, _ in receiver.received] == [503] * receives + [200]
    assert receiver.verified()[-1]["data"] == dead["detail"]
    assert outbound.waiting(outbound.local.dead_letter_queue_url) == []


def test_the_secret_is_never_logged(
    outbound: Outbound, receiver: Receiver, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver.statuses = [500]
    end_a_call()
    outbound.deliver()
    logged = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    assert "webhook not delivered" in logged and "webhook delivered" in logged
    printed = capsys.readouterr()
    for secret in (SECRET, SECRET.removeprefix("whsec_")):
        assert secret not in logged + printed.out + printed.err + "".join(outbound.log)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/hook", "refused scheme http: https only"),
        ("https://10.1.2.3/hook", "refused address 10.1.2.3 (not a public address)"),
        ("https://169.254.169.254/latest", "refused address 169.254.169.254 (not a public address)"),
        ("https://[::1]/hook", "refused address ::1 (not a public address)"),
    ],
)
def test_the_url_passes_the_checks_a_recording_fetch_does(url: str, reason: str) -> None:
    event = {"time": "2026-12-02T10:00:00Z", "detail": {"id": "x", "type": "call.ended"}}
    webhook = notify.signed(event, [SECRET])
    with pytest.raises(notify.DeliveryFailed, match=reason.replace("(", r"\(").replace(")", r"\)")):
        notify.post(url, webhook, timeout=1, allow_loopback=False)


@pytest.mark.parametrize("secret", ["whsec_a", "whsec_", ""])
def test_a_secret_that_is_not_whsec_fails_the_delivery_without_saying_it(secret: str) -> None:
    event = {"time": "2026-12-02T10:00:00Z", "detail": {"id": "x", "type": "call.ended"}}
    with pytest.raises(notify.DeliveryFailed) as failed:
        notify.signed(event, [secret] if secret else [])
    assert "whsec_" in str(failed.value) or "no signing secret" in str(failed.value)


def test_backoff_doubles_to_its_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_BACKOFF_SECONDS", raising=False)
    monkeypatch.delenv("NOTIFY_BACKOFF_MAX_SECONDS", raising=False)
    assert [notify.backoff_seconds(n) for n in range(1, 13)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600, 3600]


def test_a_failed_delivery_waits_its_backoff_hidden_on_the_queue(
    outbound: Outbound, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_BACKOFF_SECONDS", "30")
    receiver.statuses = [500]
    end_a_call()
    assert outbound.deliver() == 1  # tried once; not again at once
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=outbound.local.notify_queue_url or "", AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1" and len(receiver.received) == 1
