"""Vendor adapters: one module per vendor, each knowing its payloads and their mapping to the
normalized session. `base` holds what they share."""

from __future__ import annotations

import pkgutil
from functools import cache


@cache
def known() -> frozenset[str]:
    """Every vendor with an adapter module here, found without importing them."""
    return frozenset(module.name for module in pkgutil.iter_modules(__path__) if module.name != "base")
