"""Fetching a URL a vendor gave us, safely: https only, never a private or internal address.

A recording URL comes from a webhook body, so it is attacker-influenced even when the webhook is
authenticated (a vendor's customer can shape it). Every hop is checked after DNS resolution, the
connection goes to the address that was checked (no second lookup an attacker could answer
differently), and redirects are followed by hand, each checked the same way, at most five.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

MAX_REDIRECTS = 5
# Within one attempt: a 429/5xx or a failed connect is tried again up to 3 times (4 requests),
# waiting 0, 1 and 2 s (or the server's Retry-After, capped). Worst case per attempt: 4 x (5 s
# connect + 10 s first byte) + 3 x 5 s = 75 s, inside the copier's 240 s deadline. Retries past
# that are the stream's (MaximumRetryAttempts) and bounded by RECORDING_MAX_ATTEMPTS.
IN_ATTEMPT_RETRIES = 3
MAX_WAIT_SECONDS = 5.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Beyond what `ipaddress` flags as private/reserved: cloud metadata endpoints reachable by name.
_METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
_USER_AGENT = "callvault-recordings/1 (+https://github.com/callvault)"


class DownloadError(Exception):
    """The fetch failed. `permanent`: retrying cannot help (refused address, 404, too many redirects)."""

    def __init__(self, reason: str, *, permanent: bool, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.status = status


def check_address(address: str, *, allow_loopback: bool) -> None:
    """Refuse (DownloadError, permanent) any address that is not a public unicast one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if ip.is_loopback and allow_loopback:
        return
    if (
        ip in _METADATA
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    ):
        raise DownloadError(f"refused address {ip} (not a public address)", permanent=True)


def resolve(host: str, port: int, *, allow_loopback: bool) -> str:
    """The address to connect to: every address the name resolves to must pass `check_address`
    (a name that also points inside is refused outright), then the first is used."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DownloadError(f"cannot resolve {host}", permanent=False) from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise DownloadError(f"cannot resolve {host}", permanent=False)
    for address in addresses:
        check_address(address, allow_loopback=allow_loopback)
    return addresses[0]


@dataclass(frozen=True)
class Target:
    """A URL that passed the checks, and the address (checked) to connect to for it."""

    parts: SplitResult
    host: str
    port: int
    address: str

    @property
    def request_target(self) -> str:
        return (self.parts.path or "/") + (f"?{self.parts.query}" if self.parts.query else "")

    @property
    def host_header(self) -> str:
        return self.parts.netloc.rsplit("@", 1)[-1]


def vetted(url: str, *, allow_loopback: bool) -> Target:
    """`url` if callvault may connect to it: https (plain http only to loopback, and only when
    `allow_loopback`), every address its name resolves to public; DownloadError (permanent when
    refused) otherwise. Connect to `address`, never to the name again (no second DNS answer)."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise DownloadError("not a URL with a host", permanent=True)
    if parts.scheme != "https" and not (allow_loopback and parts.scheme == "http"):
        raise DownloadError(f"refused scheme {parts.scheme or '(none)'}: https only", permanent=True)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = resolve(host, port, allow_loopback=allow_loopback)
    if parts.scheme == "http":  # allowed only locally, and then only to loopback
        check_address(address, allow_loopback=True)
        if not ipaddress.ip_address(address.split("%", 1)[0]).is_loopback:
            raise DownloadError("refused scheme http: https only", permanent=True)
    return Target(parts, host, port, address)


@contextmanager
def _read_errors() -> Iterator[None]:
    """urllib3's errors reading a body (the connection broke, or stalled past the read timeout)
    as a transient DownloadError: the attempt ends, its claim is released, Lambda retries."""
    try:
        yield
    except Exception as exc:
        raise DownloadError(f"read failed: {type(exc).__name__}", permanent=False) from exc


@dataclass
class Opened:
    """A response whose body is still to be read (`response.stream(...)` / `read(n)`)."""

    url: str  # after redirects
    response: Any  # urllib3.HTTPResponse
    content_type: str
    content_length: int | None

    def read_head(self, size: int) -> bytes:
        """The first `size` bytes (fewer if the body is shorter)."""
        with _read_errors():
            data: bytes = self.response.read(size)
        return data

    def read_some(self, size: int) -> bytes:
        """Up to `size` bytes, returning as soon as any arrive (b"" at the end): a server that
        trickles cannot hold one read open past the caller's deadline checks."""
        read1 = getattr(self.response, "read1", None)  # urllib3 >= 2.1
        if read1 is None:
            read1 = self.response._fp.read1  # urllib3 2.0: the http.client response beneath
        with _read_errors():
            data: bytes = read1(size)
        return data

    def close(self) -> None:
        self.response.release_conn()


def pool(scheme: str, host: str, address: str, port: int, timeout: Any, maxsize: int = 1) -> Any:
    """A connection pool to the vetted `address`, TLS verified for the name `host`."""
    import urllib3

    if scheme == "https":  # connect to the vetted address; verify the certificate for the name
        return urllib3.HTTPSConnectionPool(
            address,
            port,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            timeout=timeout,
            retries=False,
            maxsize=maxsize,
        )
    return urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=maxsize)


@cache
def _bounded_retry() -> Any:
    """urllib3's Retry with a server's Retry-After honoured up to MAX_WAIT_SECONDS: a `Retry-After:
    3600` must not hold one attempt past the copier's deadline (a longer outage is left to the
    stream's retries)."""
    from urllib3.util import Retry

    class BoundedRetry(Retry):
        def get_retry_after(self, response: Any) -> float | None:
            wait = super().get_retry_after(response)
            return None if wait is None else min(wait, MAX_WAIT_SECONDS)

    return BoundedRetry


def open_url(url: str, *, deadline: float, allow_loopback: bool = False, headers: Mapping[str, str] | None = None) -> Opened:
    """GET `url` (following up to five redirects, each checked) and return the open response.

    `headers` (credentials, say) go only with the request for `url` itself: no redirect carries
    them on, to a short-lived storage URL or to the same host.

    Transient failures (connection errors, 429 and 5xx after three tries with backoff) raise a
    non-permanent DownloadError; 4xx, refused addresses and bad schemes a permanent one.
    """
    import urllib3
    from urllib3.util import Timeout

    retries = _bounded_retry()(
        total=IN_ATTEMPT_RETRIES,
        connect=IN_ATTEMPT_RETRIES,
        read=1,
        status=IN_ATTEMPT_RETRIES,
        redirect=0,
        backoff_factor=0.5,
        backoff_max=MAX_WAIT_SECONDS,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    for hop in range(MAX_REDIRECTS + 1):
        target = vetted(url, allow_loopback=allow_loopback)
        parts, host, port, address = target.parts, target.host, target.port, target.address
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DownloadError("timed out", permanent=False)
        # A single wait for data is short; the caller's deadline bounds the whole copy.
        timeout = Timeout(connect=min(5.0, remaining), read=min(10.0, remaining))
        try:
            response = pool(parts.scheme, host, address, port, timeout).urlopen(
                "GET",
                target.request_target,
                headers={
                    **(headers if headers and hop == 0 else {}),
                    "Host": target.host_header,
                    "User-Agent": _USER_AGENT,
                    "Accept": "audio/*, */*;q=0.5",
                },
                redirect=False,
                retries=retries,
                preload_content=False,
                decode_content=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise DownloadError(f"fetch failed: {type(exc).__name__}", permanent=False) from exc
        if response.status in _REDIRECTS:
            location = response.headers.get("location")
            response.drain_conn()
            if not location:
                raise DownloadError(f"HTTP {response.status} without a Location", permanent=True, status=response.status)
            url = urljoin(url, location)
            continue
        if response.status != 200:
            response.drain_conn()
            transient = response.status in (408, 429) or response.status >= 500
            raise DownloadError(f"HTTP {response.status}", permanent=not transient, status=response.status)
        length = response.headers.get("content-length")
        return Opened(
            url=url,
            response=response,
            content_type=(response.headers.get("content-type") or "").split(";", 1)[0].strip().lower(),
            content_length=int(length) if length and length.isdigit() else None,
        )
    raise DownloadError(f"more than {MAX_REDIRECTS} redirects", permanent=True)
