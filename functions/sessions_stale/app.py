"""Counts sessions that went quiet before they ended (SessionsStale, any vendor), on a schedule."""

from callvault.reconcile import stale_handler as lambda_handler

__all__ = ["lambda_handler"]
