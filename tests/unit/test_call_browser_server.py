"""The call browser's local server, without a browser: what it serves, to whom, and the one-line
mistakes of `callvault ui`."""

from __future__ import annotations

import json
import socket
from typing import Any

import boto3
import pytest

from callvault_local import cli
from callvault_local.console import UserError
from callvault_local.ui import STATIC, RawUnreadable, Ui, own_host, same_origin_write
from callvault_local.ui.proxy import execute_api_region, make_server, signed_api

PORT = 8123
HOST = {"Host": f"127.0.0.1:{PORT}"}
SESSION = {"events": [{"event_id": "e1", "raw_s3_uri": "s3://archive/raw/cozmox/server-messages/2026/11/20/e1.json"}]}


def _ui(read_raw: Any = None) -> Ui:
    def read_session(vendor: str, session_id: str) -> tuple[int, bytes]:
        if (vendor, session_id) == ("cozmox", "call 1"):
            return 200, json.dumps(SESSION).encode()
        return 404, b'{"error": "no session"}'

    def default_raw(uri: str) -> bytes:
        return b'{"raw": "' + uri.encode() + b'"}'

    return Ui(read_session, read_raw or default_raw, ["cozmox", "vapi"])


def test_pages_and_assets_are_served_with_a_strict_policy() -> None:
    ui = _ui()
    listing = ui.handle("GET", "/ui/?vendor=cozmox", HOST, PORT)
    assert listing.status == 200 and b'data-vendors="cozmox,vapi"' in listing.body
    assert b'data-statuses="queued,ringing,in_progress,ended"' in listing.body
    assert "script-src 'self'" in listing.headers["content-security-policy"]
    call = ui.handle("GET", "/ui/sessions/cozmox/call%201", HOST, PORT)
    assert call.status == 200 and b"call.js" in call.body
    for name in STATIC:
        asset = ui.handle("GET", f"/ui/static/{name}", HOST, PORT)
        assert asset.status == 200 and asset.headers["x-content-type-options"] == "nosniff"
    assert ui.handle("GET", "/ui", HOST, PORT).headers["location"] == "/ui/"
    assert ui.handle("GET", "/ui/static/../__init__.py", HOST, PORT).status == 404
    assert ui.handle("GET", "/ui/static/proxy.py", HOST, PORT).status == 404
    assert ui.handle("POST", "/ui/", HOST, PORT).status == 405


def test_a_raw_payload_is_one_the_api_names_for_that_session() -> None:
    ui = _ui()
    found = ui.handle("GET", "/ui/raw/cozmox/call%201/e1", HOST, PORT)
    assert found.status == 200 and found.headers["content-type"].startswith("text/plain")
    assert json.loads(found.body) == {"raw": SESSION["events"][0]["raw_s3_uri"]}
    assert ui.handle("GET", "/ui/raw/cozmox/call%201/other", HOST, PORT).status == 404  # not one of its events
    assert ui.handle("GET", "/ui/raw/cozmox/unknown/e1", HOST, PORT).status == 404  # the API's 404, passed on

    def refused(uri: str) -> bytes:
        raise RawUnreadable("S3 answered AccessDenied")

    denied = _ui(refused).handle("GET", "/ui/raw/cozmox/call%201/e1", HOST, PORT)
    assert denied.status == 502 and "AccessDenied" in json.loads(denied.body)["error"]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        (f"127.0.0.1:{PORT}", True),
        (f"localhost:{PORT}", True),
        ("127.0.0.1:1", False),
        (f"evil.example:{PORT}", False),
        ("", False),
    ],
)
def test_only_requests_addressed_to_this_server(host: str, allowed: bool) -> None:
    assert own_host({"Host": host}, PORT) is allowed
    assert (_ui().handle("GET", "/ui/", {"Host": host}, PORT).status == 200) is allowed


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),  # not a browser: no cross-site page behind it
        ({"Origin": f"http://127.0.0.1:{PORT}", "Sec-Fetch-Site": "same-origin"}, True),
        ({"Origin": "https://evil.example"}, False),
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Sec-Fetch-Site": "same-site", "Origin": f"http://127.0.0.1:{PORT}"}, False),
    ],
)
def test_cross_site_writes_are_refused(headers: dict[str, str], allowed: bool) -> None:
    assert same_origin_write(headers, PORT) is allowed


def test_region_from_the_api_host() -> None:
    assert execute_api_region("abc123.execute-api.eu-west-1.amazonaws.com", None) == "eu-west-1"
    assert execute_api_region("calls.example.com", "us-east-2") == "us-east-2"


def _session(**kwargs: Any) -> boto3.Session:
    return boto3.Session(aws_access_key_id="AKID", aws_secret_access_key="secret", **kwargs)


def test_signed_api_takes_the_stacks_url() -> None:
    api = signed_api("https://abc123.execute-api.eu-west-1.amazonaws.com/sessions/", session=_session())
    assert api.base == "https://abc123.execute-api.eu-west-1.amazonaws.com" and api.region == "eu-west-1"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("abc123.execute-api.eu-west-1.amazonaws.com", "not an API URL"),
        ("ftp://abc123.execute-api.eu-west-1.amazonaws.com", "not an API URL"),
        ("http://abc123.execute-api.eu-west-1.amazonaws.com", "plain http"),
        ("https://calls.example.com", "cannot tell the region"),
    ],
)
def test_user_mistakes_are_one_line(
    url: str, said: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    assert cli.main(["ui", "--url", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("callvault ui: ") and said in err and err.count("\n") == 1


def test_no_credentials_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata lookup: no network
    assert cli.main(["ui", "--url", "https://abc123.execute-api.eu-west-1.amazonaws.com"]) == 2
    err = capsys.readouterr().err
    assert "no AWS credentials found" in err and err.count("\n") == 1


def test_port_in_use_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        api = signed_api("https://abc123.execute-api.eu-west-1.amazonaws.com", session=_session())
        with pytest.raises(UserError, match=f"port {port} is already in use"):
            make_server(api, port, s3=None)


def test_an_unknown_calls_page_is_a_404_that_says_so_without_javascript() -> None:
    page = _ui().handle("GET", "/ui/sessions/cozmox/no%3Cb%3Esuch", HOST, PORT)
    assert page.status == 404 and b'<h1 id="title">Call not found</h1>' in page.body
    assert b"no&lt;b&gt;such" in page.body and b"<b>" not in page.body  # the id is escaped


def test_a_known_calls_page_carries_its_session_and_nothing_can_close_the_block() -> None:
    def read_session(vendor: str, session_id: str) -> tuple[int, bytes]:
        return 200, json.dumps({"summary": "</script><script>alert(1)</script>"}).encode()

    page = Ui(read_session, lambda uri: b"", ["cozmox"]).handle("GET", "/ui/sessions/cozmox/x", HOST, PORT)
    embedded = page.body.split(b'id="session-data">')[1].split(b"</script>")[0]
    assert json.loads(embedded) == {"summary": "</script><script>alert(1)</script>"}
