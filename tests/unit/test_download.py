"""Which addresses a recording may be fetched from (download.check_address / resolve)."""

from __future__ import annotations

import pytest

from callvault import download
from callvault.download import DownloadError, check_address, resolve
from callvault.recordings import sniff_audio


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.169.254",  # instance metadata
        "fd00:ec2::254",  # instance metadata, IPv6
        "::1",
        "0.0.0.0",  # noqa: S104 - an address refused, not bound
        "100.64.0.1",  # carrier-grade NAT
        "224.0.0.1",
        "::ffff:10.0.0.1",  # IPv4-mapped private
        "fe80::1%eth0",
        "240.0.0.1",
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    with pytest.raises(DownloadError) as raised:
        check_address(address, allow_loopback=False)
    assert raised.value.permanent


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    check_address(address, allow_loopback=False)


def test_loopback_only_when_allowed_and_private_never() -> None:
    check_address("127.0.0.1", allow_loopback=True)
    check_address("::1", allow_loopback=True)
    with pytest.raises(DownloadError):
        check_address("10.0.0.1", allow_loopback=True)
    with pytest.raises(DownloadError):
        check_address("169.254.169.254", allow_loopback=True)


def test_a_name_is_checked_after_resolution() -> None:
    with pytest.raises(DownloadError) as raised:
        resolve("localhost", 443, allow_loopback=False)
    assert raised.value.permanent and "refused address" in raised.value.reason


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"ID3\x04\x00", "audio/mpeg"),
        (b"\xff\xfb\x90\x64", "audio/mpeg"),
        (b"OggS\x00\x02", "audio/ogg"),
        (b"fLaC\x00", "audio/flac"),
        (b"\x00\x00\x00\x20ftypM4A ", "audio/mp4"),
        (b"<html>", None),
        (b"", None),
    ],
)
def test_audio_is_recognised_by_its_first_bytes(head: bytes, kind: str | None) -> None:
    assert sniff_audio(head) == kind


def test_a_servers_retry_after_is_honoured_only_up_to_the_cap() -> None:
    """A `Retry-After: 3600` must not hold one copy attempt past its deadline."""
    from urllib3 import HTTPResponse

    retry = download._bounded_retry()(total=3, status=3, status_forcelist=(503,), backoff_max=download.MAX_WAIT_SECONDS)
    later = HTTPResponse(headers={"Retry-After": "3600"}, status=503)
    assert retry.get_retry_after(later) == download.MAX_WAIT_SECONDS
    soon = HTTPResponse(headers={"Retry-After": "2"}, status=503)
    after_one = retry.increment("GET", "/r.wav", response=soon)  # urllib3 makes the next Retry from this one
    assert after_one.get_retry_after(later) == download.MAX_WAIT_SECONDS and after_one.get_retry_after(soon) == 2
