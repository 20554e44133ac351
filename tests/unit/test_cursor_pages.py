"""Cursor paging shared by the list APIs that page by an opaque cursor (Retell, ElevenLabs)."""

from __future__ import annotations

import pytest

from callvault.models import Status
from callvault.vendor_api import ApiError
from callvault.vendors.base import Listed, cursor_pages


def _api(pages: dict[str | None, tuple[list[str], bool, str | None]]):  # type: ignore[no-untyped-def]
    asked: list[str | None] = []

    def request(cursor: str | None) -> tuple[list[Listed], bool, str | None]:
        asked.append(cursor)
        ids, more, following = pages[cursor]
        return [Listed(session_id=i, status=Status.ENDED) for i in ids], more, following

    return request, asked


def test_pages_are_followed_cursor_to_cursor_to_the_last() -> None:
    request, asked = _api({None: (["a", "b"], True, "c1"), "c1": (["c"], True, "c2"), "c2": (["d"], False, None)})
    pages = [[x.session_id for x in page] for page in cursor_pages(request, "GET /list")]
    assert pages == [["a", "b"], ["c"], ["d"]] and asked == [None, "c1", "c2"]


def test_an_api_that_would_send_the_pass_round_is_an_error_not_a_loop() -> None:
    request, _ = _api({None: (["a"], True, "c1"), "c1": (["b"], True, "c1")})
    pages = cursor_pages(request, "GET /list")
    assert [x.session_id for x in next(pages)] == ["a"]
    assert [x.session_id for x in next(pages)] == ["b"]
    with pytest.raises(ApiError, match=r"GET /list: more pages promised without a new cursor \('c1'\)"):
        next(pages)
    request, _ = _api({None: (["a"], True, None)})
    with pytest.raises(ApiError):
        list(cursor_pages(request, "GET /list"))
