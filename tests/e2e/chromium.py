"""Headless Chromium from Debian's `chromium` package, driven by Playwright (never `playwright
install`: browsers cannot be downloaded here). `make test` installs the package where missing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 768}  # a laptop screen


def require_chromium() -> None:
    """Skip where chromium is truly absent, outside CI; in CI (`make test` installed it) never skip."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: `make test` installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium; `make test` does it)")


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
