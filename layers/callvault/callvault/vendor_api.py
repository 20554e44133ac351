"""Calling a vendor's own API (reconcile): JSON over https, the key in a header, 429 and 5xx
retried with backoff and `Retry-After` honoured.

The base URL is configuration, not payload, but it gets the recordings' discipline all the same
(`callvault.download`): https only, every address checked after DNS resolution and connected to
as checked, no redirects followed; loopback and plain http only where explicitly allowed (the
local stack and its fake vendor APIs).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from callvault.download import DownloadError, check_address, pool, resolve

_USER_AGENT = "callvault-reconcile/1 (+https://github.com/callvault)"
# A list page of full conversations is large, but not this large: past it the answer is refused.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# A Retry-After longer than this is cut to it: the pass must end inside the function's timeout.
MAX_RETRY_AFTER_SECONDS = 60.0


class ApiError(Exception):
    """The vendor API did not answer usefully. `status` is the last HTTP status (None: no answer)."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status

    @property
    def refused_key(self) -> bool:
        """The API refused the key (401/403): no retry, no later page, can help."""
        return self.status in (401, 403)

    @property
    def not_found(self) -> bool:
        return self.status == 404


def _retry(retries: int, backoff_seconds: float) -> Any:
    from urllib3.util import Retry

    class _CappedRetry(Retry):
        def get_retry_after(self, response: Any) -> float | None:
            value = super().get_retry_after(response)
            return None if value is None else min(float(value), MAX_RETRY_AFTER_SECONDS)

    return _CappedRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        redirect=0,
        backoff_factor=backoff_seconds,
        backoff_max=30,
        status_forcelist=(429, 500, 502, 503, 504),
        # Listing is a read even where it is a POST (Retell's list-calls): safe to repeat.
        allowed_methods=frozenset({"GET", "POST"}),
        raise_on_status=False,
        respect_retry_after_header=True,
    )


@dataclass
class ApiClient:
    """One vendor API: `base_url` plus the auth `headers`; counts the requests it sends."""

    base_url: str
    headers: dict[str, str]
    allow_loopback: bool = False
    retries: int = 5
    backoff_seconds: float = 0.5
    timeout_seconds: float = 20.0
    requests: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if not parts.hostname or parts.scheme not in ("https", "http"):
            raise ApiError(f"not an API URL: {self.base_url!r}")
        if parts.scheme == "http" and not self.allow_loopback:
            raise ApiError("refused scheme http: https only")
        self._parts = parts
        self._pool: Any = None

    def _connection(self) -> Any:
        if self._pool is None:
            from urllib3.util import Timeout

            parts = self._parts
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
            try:
                address = resolve(host, port, allow_loopback=self.allow_loopback)
                if parts.scheme == "http":  # allowed only locally, and then only to loopback
                    check_address(address, allow_loopback=True)
            except DownloadError as exc:
                raise ApiError(exc.reason) from exc
            timeout = Timeout(connect=5.0, read=self.timeout_seconds)
            self._pool = pool(parts.scheme, host, address, port, timeout, maxsize=4)
        return self._pool

    def request(self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None) -> bytes:
        """The response body of `method base_url+path?params` (JSON `body` if given), as sent.

        Raises ApiError: at once for 4xx (`refused_key` for 401/403), after the retries for
        429, 5xx and connection failures."""
        import urllib3

        query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
        target = self._parts.path.rstrip("/") + path + (f"?{query}" if query else "")
        headers = {"Host": self._parts.netloc.rsplit("@", 1)[-1], "User-Agent": _USER_AGENT, "Accept": "application/json"}
        headers |= self.headers
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.requests += 1
        try:
            response = self._connection().urlopen(
                method,
                target,
                body=data,
                headers=headers,
                redirect=False,
                retries=_retry(self.retries, self.backoff_seconds),
                preload_content=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise ApiError(f"{method} {self._parts.netloc}{path} failed: {_failure(exc)}") from exc
        try:
            # Each retry was a request too (the Retry history lists them).
            self.requests += len(getattr(response.retries, "history", ()) or ())
            content = response.read(MAX_RESPONSE_BYTES + 1)
        finally:
            response.release_conn()
        if len(content) > MAX_RESPONSE_BYTES:
            raise ApiError(f"{method} {path}: answer larger than {MAX_RESPONSE_BYTES} bytes", response.status)
        if response.status != 200:
            raise ApiError(f"{method} {path}: HTTP {response.status}", response.status)
        return bytes(content)


def _failure(exc: Exception) -> str:
    """What a connection failure was, in words ("Connection refused", "timed out"), not urllib3's
    wrapper's name: the retries' last cause where they ran out."""
    cause = getattr(exc, "reason", None) or exc
    text = str(cause)
    errno_text = re.search(r"\[Errno -?\d+\] ([^)'\"]+)", text)
    if errno_text:
        return errno_text.group(1).strip()
    if "timed out" in text.lower():
        return "timed out"
    return type(cause).__name__
