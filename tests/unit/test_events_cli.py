"""`callvault events`: a user's mistake is one line, as for every command."""

from __future__ import annotations

import pytest

from tests.unit.test_cli_mistakes import closed_port, one_line

__all__ = ["closed_port"]  # the fixture, used by name below


@pytest.mark.parametrize("extra", [[], ["--redrive"]])
def test_events_with_no_stack_running_says_how_to_start_it(
    capsys: pytest.CaptureFixture[str], closed_port: int, extra: list[str]
) -> None:
    assert one_line(capsys, "events", "--moto-port", str(closed_port), *extra) == (
        1,
        f"callvault events: no local stack answers at http://127.0.0.1:{closed_port}: start it with"
        f" `make dev MOTO_PORT={closed_port}`, or point at yours with --port/--moto-port (or PORT/MOTO_PORT)",
    )


def test_a_count_below_one_is_a_mistake(capsys: pytest.CaptureFixture[str]) -> None:
    assert one_line(capsys, "events", "--count", "0") == (2, "callvault events: --count must be 1 or more")
