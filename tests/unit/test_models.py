"""Time normalization and the normalized session's shape."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.models import Session, add_seconds, seconds_between, utc_iso


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-12-25T00:00:00.000Z", "2023-12-25T00:00:00.000Z"),
        ("2023-12-25T01:30:00+01:30", "2023-12-25T00:00:00.000Z"),
        ("2023-12-25T00:00:00", "2023-12-25T00:00:00.000Z"),
        ("2019-08-24T14:15:22.123456Z", "2019-08-24T14:15:22.123Z"),
        (1703462400, "2023-12-25T00:00:00.000Z"),
        (1703462400000, "2023-12-25T00:00:00.000Z"),
        (1703462400.5, "2023-12-25T00:00:00.500Z"),
        ("1703462400000", "2023-12-25T00:00:00.000Z"),
        ("<string>", None),
        ("", None),
        (None, None),
        (True, None),
        ([], None),
        (10**30, None),
    ],
)
def test_utc_iso(value: object, expected: str | None) -> None:
    assert utc_iso(value) == expected


@given(st.one_of(st.text(), st.integers(), st.floats(), st.none()))
def test_utc_iso_never_raises(value: object) -> None:
    result = utc_iso(value)
    assert result is None or result.endswith("Z")


def test_durations() -> None:
    assert seconds_between("2023-12-25T00:00:00.000Z", "2023-12-25T00:02:30.250Z") == 150.25
    assert seconds_between("2023-12-25T00:00:01.000Z", "2023-12-25T00:00:00.000Z") is None
    assert add_seconds("2023-12-25T00:00:00.000Z", 1.5) == "2023-12-25T00:00:01.500Z"
    assert add_seconds(None, 1.5) is None


def test_session_contract_keys() -> None:
    session = Session(vendor="speaknode", session_id="s").model_dump(mode="json")
    assert sorted(session) == sorted(
        [
            "vendor",
            "session_id",
            "status",
            "channel",
            "agent",
            "from_number",
            "to_number",
            "created_at",
            "started_at",
            "ended_at",
            "duration_seconds",
            "ended_reason",
            "cost",
            "recording",
            "transcript",
            "summary",
            "metrics",
            "events",
            "vendor_fields",
        ]
    )  # JSON objects are unordered: the keys are the contract
    assert session["recording"] == {
        "source_url": None,
        "expires_at": None,
        "state": "none",
        "s3_uri": None,
        "bytes": None,
        "sha256": None,
        "content_type": None,
        "archived_at": None,
        "error": None,
        "attempts": None,
    }
    assert session["channel"] == "unknown" and session["agent"] == {"id": None, "name": None}


# Times in the written form (`...SS.mmmZ`): real ones, and digits anywhere (mostly no real day).
real_written = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
    lambda moment: moment.isoformat(timespec="milliseconds") + "Z"
)
any_written = st.tuples(*[st.text("0123456789", min_size=n, max_size=n) for n in (4, 2, 2, 2, 2, 2, 3)]).map(
    lambda p: f"{p[0]}-{p[1]}-{p[2]}T{p[3]}:{p[4]}:{p[5]}.{p[6]}Z"
)


@given(st.one_of(real_written, any_written))
def test_utc_iso_reads_its_own_form_as_any_other_form(written: str) -> None:
    # A time already in the written form is checked, not formatted again: the answer is what the
    # same time with an explicit +00:00 zone gets, valid day or not (February 30th).
    assert utc_iso(written) == utc_iso(written.replace("Z", "+00:00"))
