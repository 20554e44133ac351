"""Vendor adapters: one module per vendor, each knowing its payloads and their mapping to the
normalized session. `base` holds what they share."""
