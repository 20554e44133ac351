"""Reconcile (one function per vendor with a pull API, RECONCILE_VENDOR): run by EventBridge
Scheduler, pulls what the webhooks missed from the vendor's own API (callvault.reconcile)."""

from callvault.reconcile import lambda_handler

__all__ = ["lambda_handler"]
