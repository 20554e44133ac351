"""A user's mistakes through the real CLI: each is one line on stderr and a non-zero exit, never a
traceback; every command finds the local stack the same way (flags, else PORT/MOTO_PORT)."""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from callvault_local import cli
from callvault_local.console import LocalStack, local_stack
from callvault_local.progress import Progress

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = "events/payloads/cozmox/hang.json"


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield int(listener.getsockname()[1])


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "MOTO_PORT", "BUCKET_NAME", "TABLE_NAME", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(ROOT)


def one_line(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run `callvault argv`; its exit status and its single stderr line (asserted single, no traceback)."""
    try:
        status = cli.main(list(argv))
    except SystemExit as exc:  # argparse's own exits
        status = int(exc.code or 0)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert status != 0
    return status, err.rstrip("\n")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == "callvault 0.2.0\n"


def test_unknown_vendor_lists_the_vendors(capsys: pytest.CaptureFixture[str]) -> None:
    from callvault import vendors

    expected = f"unknown vendor 'acme'; one of: {', '.join(sorted(vendors.known()))}"
    assert one_line(capsys, "send", SAMPLE, "--vendor", "acme", "--webhook", "x") == (2, f"callvault send: {expected}")
    assert one_line(capsys, "replay", "--vendor", "acme") == (2, f"callvault replay: {expected}")
    assert one_line(capsys, "sessions", "get", "acme", "x") == (2, f"callvault sessions: {expected}")


def test_vendor_and_webhook_match_case_insensitively(capsys: pytest.CaptureFixture[str], closed_port: int) -> None:
    # Accepted: the next thing wrong is that no stack runs on that port.
    _, line = one_line(capsys, "send", SAMPLE, "--vendor", "CozMox", "--webhook", "Server-Messages", "--port", str(closed_port))
    assert line.startswith(f"callvault send: no local stack answers at http://127.0.0.1:{closed_port}/webhooks/cozmox/")


def test_unknown_webhook_lists_the_vendors_webhooks(capsys: pytest.CaptureFixture[str]) -> None:
    assert one_line(capsys, "send", SAMPLE, "--vendor", "speaknode", "--webhook", "ended") == (
        2,
        "callvault send: speaknode has no webhook 'ended'; one of: conversation-complete, session-started",
    )


@pytest.mark.parametrize("option", ["--since", "--until"])
def test_bad_date(capsys: pytest.CaptureFixture[str], option: str) -> None:
    expected = f"{option}: not a day or an ISO 8601 time, e.g. 2026-11-20 or 2026-11-20T09:15:00Z"
    assert one_line(capsys, "replay", "--vendor", "cozmox", option, "2026-13-01") == (
        2,
        f"callvault replay: {expected}: '2026-13-01'",
    )
    assert one_line(capsys, "replay", "--vendor", "cozmox", option, "yesterday") == (
        2,
        f"callvault replay: {expected}: 'yesterday'",
    )


def test_replay_since_after_until_whatever_their_form(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["replay", "--vendor", "cozmox", "--since", "2026-11-20T10:00:00Z", "--until", "2026-11-20T09:00:00+00:00"]
    assert one_line(capsys, *argv) == (
        2,
        "callvault replay: --since 2026-11-20T10:00:00Z is after --until 2026-11-20T09:00:00+00:00",
    )
    argv = ["replay", "--vendor", "cozmox", "--since", "2026-11-21", "--until", "2026-11-20T23:00:00Z"]
    assert one_line(capsys, *argv)[1] == "callvault replay: --since 2026-11-21 is after --until 2026-11-20T23:00:00Z"


def test_file_missing_or_not_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    assert one_line(capsys, "send", str(missing), "--vendor", "cozmox", "--webhook", "server-messages") == (
        2,
        f"callvault send: no such file: {missing}",
    )
    text = tmp_path / "notes.txt"
    text.write_text("call me back\n")
    assert one_line(capsys, "send", str(text), "--vendor", "cozmox", "--webhook", "server-messages") == (
        2,
        f"callvault send: {text} is not JSON (line 1, column 1: Expecting value)",
    )
    assert one_line(capsys, "send", str(tmp_path), "--vendor", "cozmox", "--webhook", "server-messages")[1].startswith(
        f"callvault send: cannot read {tmp_path}"
    )


def test_stack_not_running_says_how_to_start_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    hint = f"start it with `make dev PORT={closed_port}`, or point at yours with --port/--moto-port (or PORT/MOTO_PORT)"
    assert one_line(capsys, "sessions", "list", "--port", str(closed_port)) == (
        1,
        f"callvault sessions: no local stack answers at http://127.0.0.1:{closed_port}/sessions: {hint}",
    )
    monkeypatch.setenv("PORT", str(closed_port))  # the environment, the same way
    assert one_line(capsys, "sessions", "get", "cozmox", "x")[1].startswith(
        f"callvault sessions: no local stack answers at http://127.0.0.1:{closed_port}/sessions/cozmox/x: "
    )
    monkeypatch.delenv("PORT")
    monkeypatch.setenv("MOTO_PORT", str(closed_port))
    for argv in (["replay", "--vendor", "cozmox"], ["archive", "ls"]):
        assert one_line(capsys, *argv) == (
            1,
            f"callvault {argv[0]}: no local stack answers at http://127.0.0.1:{closed_port}: start it with"
            f" `make dev MOTO_PORT={closed_port}`, or point at yours with --port/--moto-port (or PORT/MOTO_PORT)",
        )


def test_bad_port_in_flag_or_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert one_line(capsys, "sessions", "list", "--port", "http")[1] == (
        "callvault sessions list: argument --port: not a port number: 'http' (see callvault sessions list --help)"
    )
    monkeypatch.setenv("MOTO_PORT", "70000")
    assert one_line(capsys, "replay", "--vendor", "cozmox") == (2, "callvault replay: MOTO_PORT: not a port number: '70000'")


def test_usage_mistake_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    _, line = one_line(capsys, "send", SAMPLE, "--vendor", "cozmox", "--port", "x")
    assert line == "callvault send: argument --port: not a port number: 'x' (see callvault send --help)"


def test_send_asks_for_the_webhook_only_where_a_vendor_has_several(capsys: pytest.CaptureFixture[str], closed_port: int) -> None:
    port = ["--port", str(closed_port)]
    # One webhook: it is the one (the next thing wrong is that no stack runs there).
    for vendor, route in (("Retell", "retell/events"), ("cozmox", "cozmox/server-messages")):
        _, line = one_line(capsys, "send", SAMPLE, "--vendor", vendor, *port)
        assert line.startswith(f"callvault send: no local stack answers at http://127.0.0.1:{closed_port}/webhooks/{route}: ")
    assert one_line(capsys, "send", "events/payloads/speaknode/session-started.json", "--vendor", "speaknode", *port) == (
        2,
        "callvault send: speaknode has 2 webhooks: give --webhook, one of: conversation-complete, session-started",
    )
    assert one_line(capsys, "send", SAMPLE, *port) == (
        2,
        "callvault send: give --vendor (or an events/ file, which names its route)",
    )


def test_send_takes_the_route_an_events_file_names(capsys: pytest.CaptureFixture[str], closed_port: int) -> None:
    port = ["--port", str(closed_port)]
    for event, route in (
        ("events/speaknode_session_started.json", "speaknode/session-started"),
        ("events/speaknode_conversation_complete.json", "speaknode/conversation-complete"),
        ("events/retell_events.json", "retell/events"),
    ):
        for options in ([], ["--vendor", route.split("/")[0].upper()], ["--webhook", route.split("/")[1]]):
            _, line = one_line(capsys, "send", event, *options, *port)
            assert f"answers at http://127.0.0.1:{closed_port}/webhooks/{route}: " in line, (options, line)
    event = "events/speaknode_session_started.json"
    assert one_line(capsys, "send", event, "--webhook", "conversation-complete", *port) == (
        2,
        f"callvault send: {event} is an event for /webhooks/speaknode/session-started, not --webhook conversation-complete",
    )
    assert one_line(capsys, "send", event, "--vendor", "cozmox", *port)[1].endswith("not --vendor cozmox")


def test_send_help_lists_each_vendors_webhooks(capsys: pytest.CaptureFixture[str]) -> None:
    from callvault import vendors

    with pytest.raises(SystemExit) as exited:
        cli.main(["send", "--help"])
    assert exited.value.code == 0
    listed = capsys.readouterr().out.split("webhooks (--webhook is needed only where a vendor has several):\n")[1]
    rows = {line.split()[0]: line.split(None, 1)[1] for line in listed.splitlines() if line.strip()}
    assert rows == {v: ", ".join(sorted(vendors.adapter(v).webhooks)) for v in vendors.known()}
    assert rows["speaknode"] == "conversation-complete, session-started"


def test_replay_bucket_without_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert one_line(capsys, "replay", "--vendor", "cozmox", "--bucket", "b") == (
        2,
        "callvault replay: --bucket and --table go together (the stack's ArchiveBucketName and SessionsTableName)",
    )


def _leaf_parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found = list(_leaf_parsers(child))
                yield from ((f"{name} {sub}", leaf) for sub, leaf in found) if found else [(name, child)]


def test_every_command_takes_the_ports_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    # fake-api and ui serve on a port of their own (a vendor's API; the call browser of a deployed
    # stack): they do not talk to the local stack.
    leaves = {name: parser for name, parser in _leaf_parsers(cli.build_parser()) if name not in ("fake-api", "ui")}
    assert {"dev", "send", "sessions list", "sessions get", "replay", "archive ls", "archive get"} <= set(leaves)
    for name, parser in leaves.items():
        options = {option for action in parser._actions for option in action.option_strings}
        assert {"--port", "--moto-port"} <= options, name
        defaults = argparse.Namespace(**{a.dest: a.default for a in parser._actions})
        monkeypatch.setenv("PORT", "3917")
        monkeypatch.setenv("MOTO_PORT", "5917")
        assert local_stack(defaults) == LocalStack(3917, 5917), name
        defaults.port, defaults.moto_port = 3001, 5001  # a flag wins over the environment
        assert local_stack(defaults) == LocalStack(3001, 5001), name
        monkeypatch.delenv("PORT")
        monkeypatch.delenv("MOTO_PORT")
        defaults.port = defaults.moto_port = None
        assert local_stack(defaults) == LocalStack(3000, 5000), name


@pytest.mark.parametrize("variable", ["PORT", "MOTO_PORT"])
def test_dev_on_a_taken_port_names_the_port_and_its_variable(variable: str, taken_port: int) -> None:
    env = {**os.environ, "PORT": "0", "MOTO_PORT": "0", variable: str(taken_port)}
    result = subprocess.run(
        [sys.executable, "-m", "callvault_local.cli", "dev"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    flag = "--" + variable.lower().replace("_", "-")
    assert result.returncode == 1
    assert result.stderr == (
        f"callvault dev: port {taken_port} ({variable}) is already in use: choose another with {variable}=N or {flag} N\n"
    )


@pytest.mark.parametrize("variable", ["PORT", "MOTO_PORT"])
def test_dev_on_a_taken_port_says_so_before_starting_anything(variable: str, taken_port: int) -> None:
    """Said before moto, boto3 or a handler is even imported (they take seconds), not after."""
    env = {**os.environ, "PORT": "0", "MOTO_PORT": "0", variable: str(taken_port)}
    script = (
        "import sys; from callvault_local.cli import main; status = main(['dev']); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'moto', 'boto3', 'botocore', 'callvault'})); sys.exit(status)"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (1, "[]\n"), result.stderr
    assert result.stderr.count("\n") == 1 and f"port {taken_port} ({variable}) is already in use" in result.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_only_and_summarized() -> None:
    terminal, pipe = _Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = Progress("replay cozmox", stream=stream)
        for outcome in ("duplicate", "stored", "duplicate"):
            progress.count(outcome)
        assert progress.finish() == "replay cozmox: duplicate 2, stored 1"
    assert pipe.getvalue() == ""
    assert terminal.getvalue().startswith("\rreplay cozmox: 1  (duplicate 1)") and terminal.getvalue().endswith("\r")
    assert Progress("replay voiceos", stream=pipe).finish() == "replay voiceos: nothing to do"


def test_reconcile_and_fake_api_match_vendors_as_every_command_does(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from callvault import reconcile, vendors

    # What `callvault reconcile` sets for itself, set here so that it ends with this test (a
    # function run later in this worker would emit no metrics).
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "CRITICAL")

    listed = f"one of: {', '.join(sorted(vendors.known()))}"
    assert one_line(capsys, "reconcile", "--vendor", "acme") == (2, f"callvault reconcile: unknown vendor 'acme'; {listed}")
    pulls = ", ".join(reconcile.pull_vendors())
    status, line = one_line(capsys, "reconcile", "--vendor", "SpeakNode")
    assert status == 2 and line.endswith(f"(vendors with a pull API: {pulls})"), line
    # Any case is the vendor: the next thing missing is its API key.
    assert one_line(capsys, "reconcile", "--vendor", "VoiceOS") == (
        2,
        "callvault reconcile: no API key: set CALLVAULT_API_KEY_VOICEOS to your voiceos API key",
    )
    from callvault_local.fake_vendor_apis import VENDORS

    assert one_line(capsys, "fake-api", "--vendor", "SpeakNode") == (
        2,
        f"callvault fake-api: no fake API for speaknode: one of {', '.join(sorted(VENDORS))}",
    )


def test_the_same_port_for_both_or_port_0_to_a_client_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", "3919")
    monkeypatch.setenv("MOTO_PORT", "3919")
    expected = "the API and moto were both given port 3919 (PORT, MOTO_PORT): give each a port of its own"
    assert one_line(capsys, "dev") == (2, f"callvault dev: {expected}")
    monkeypatch.delenv("PORT")
    monkeypatch.delenv("MOTO_PORT")
    assert one_line(capsys, "send", SAMPLE, "--vendor", "cozmox", "--webhook", "server-messages", "--port", "0") == (
        2,
        "callvault send: --port/PORT 0 means any free port, for `callvault dev` only: give the port the stack took",
    )
