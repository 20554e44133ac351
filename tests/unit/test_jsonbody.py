"""Strict JSON for bodies: the fast parser, the standard library's say where it refuses, and
strings made well-formed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.jsonbody import load_json


def test_a_lone_surrogate_reads_as_the_replacement_character() -> None:
    body = b'{"text": "cut \\ud83d", "pair": "\\ud83d\\ude00", "\\udc00key": ["\\udfff", {"k": "\\ud800x"}]}'
    assert load_json(body) == {"text": "cut \ufffd", "pair": "\U0001f600", "\ufffdkey": ["\ufffd", {"k": "\ufffdx"}]}
    assert load_json(b'"\\ud800"') == "\ufffd"


def test_nesting_past_the_fast_parser_is_read_and_mended() -> None:
    deep: Any = "\ud800"
    for _ in range(500):
        deep = [deep]
    value = load_json(json.dumps(deep).encode())
    for _ in range(500):
        value = value[0]
    assert value == "\ufffd"


@pytest.mark.parametrize("body", [b"NaN", b'{"a": Infinity}', b"[-Infinity]", b"{", b""])
def test_not_json_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        load_json(body)


# Any code point, surrogates too (st.text() leaves them out unless asked).
any_text = st.text(st.characters(exclude_categories=()))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=20,
)


def _mended(value: Any) -> Any:
    """`value` with each lone surrogate replaced, recursively (the test's own, simple reading)."""
    if isinstance(value, str):
        return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in value)
    if isinstance(value, list):
        return [_mended(item) for item in value]
    if isinstance(value, dict):
        return {_mended(key): _mended(item) for key, item in value.items()}
    return value


@given(json_values)
def test_reads_what_the_standard_library_reads_mended(value: Any) -> None:
    # Any text at all, lone surrogates included (st.text() makes them), through either parser.
    body = json.dumps(value).encode()
    got = load_json(body)
    assert got == _mended(json.loads(body))
    json.dumps(got, ensure_ascii=False).encode("utf-8")  # every string encodes: no surrogate is left
