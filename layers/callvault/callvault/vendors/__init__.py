"""Vendor adapters: one module per vendor, each knowing its payloads and their mapping to the
normalized session. `base` holds what they share."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callvault.vendors.base import VendorAdapter


@cache
def known() -> frozenset[str]:
    """Every vendor with an adapter module here, found without importing them."""
    return frozenset(module.name for module in pkgutil.iter_modules(__path__) if module.name != "base")


def adapter(vendor: str) -> VendorAdapter:
    """The adapter of `vendor` (one of `known()`), its module imported on first use."""
    if vendor not in known():
        raise KeyError(f"no vendor module {vendor!r}")
    found: VendorAdapter = importlib.import_module(f"{__name__}.{vendor}").ADAPTER
    return found
