"""The recording fetch connects to the address it checked (DNS pinning) and refuses a name with
any internal address among its answers. A name the test resolves its own way stands in for an
attacker's DNS, which answers a public address to the check and an internal one to a second look."""

from __future__ import annotations

import socket
import time
from collections import Counter
from typing import Any

import pytest

from callvault import download
from callvault.download import DownloadError
from tests.media import WAV, MediaHost

NAME = "media.rebinding.test"


def _answers(monkeypatch: pytest.MonkeyPatch, *answers: list[str]) -> Counter[str]:
    """Resolve NAME to `answers[0]` on the first lookup, `answers[1]` on the second, ...; other
    names as the system does. The lookups of NAME are counted."""
    real = socket.getaddrinfo
    lookups: Counter[str] = Counter()

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host != NAME:
            return real(host, port, *args, **kwargs)
        addresses = answers[min(lookups[NAME], len(answers) - 1)]
        lookups[NAME] += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0))) for address in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


def test_the_fetch_connects_to_the_address_it_checked(media: MediaHost, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked: 127.0.0.1 (loopback allowed here), where the media host listens. A second lookup
    would answer 127.0.0.2, where nothing listens: the fetch must not make one."""
    lookups = _answers(monkeypatch, ["127.0.0.1"], ["127.0.0.2"])
    port = media.url.rsplit(":", 1)[1]
    opened = download.open_url(f"http://{NAME}:{port}/call.wav", deadline=time.monotonic() + 10, allow_loopback=True)
    try:
        assert opened.read_head(len(WAV) + 1) == WAV
    finally:
        opened.close()
    assert lookups[NAME] == 1  # resolved once; the connection went to that answer


@pytest.mark.parametrize(
    "answers",
    [
        ["93.184.215.14", "10.0.0.5"],  # the first answer public, another private
        ["93.184.215.14", "169.254.169.254"],  # ... or the instance metadata endpoint
        ["8.8.8.8", "127.0.0.1"],  # ... or loopback
    ],
)
def test_a_name_with_any_internal_address_among_its_answers_is_refused(
    monkeypatch: pytest.MonkeyPatch, answers: list[str]
) -> None:
    _answers(monkeypatch, answers)
    with pytest.raises(DownloadError) as raised:
        download.open_url(f"https://{NAME}/call.wav", deadline=time.monotonic() + 10)
    assert raised.value.permanent and raised.value.reason.startswith(f"refused address {answers[1]}")
