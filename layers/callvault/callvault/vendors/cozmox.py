"""cozmox: server messages in Vapi's format, `{"message": {"type": ..., "call": {...}}}`.

cozmox speaks Vapi's server-message format and its server credentials, so it is the Vapi
adapter (callvault/vendors/vapi.py) under its own name. What differs: its recording links are
plain URLs, fetched as they are (no private storage behind an API key).
"""

from __future__ import annotations

from dataclasses import replace

from callvault.vendors import vapi
from callvault.vendors.base import fetch_as_is

VENDOR = "cozmox"

ADAPTER = replace(vapi.ADAPTER, vendor=VENDOR, recording_fetch=fetch_as_is)
