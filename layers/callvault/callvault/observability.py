"""Powertools Logger, Metrics and Tracer, shared by every function.

Logs carry vendor, webhook, event_id and session_id as keys; never a body, a header value or
transcript text.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = Logger(service="callvault")
metrics = Metrics(namespace="callvault", service="callvault")
tracer = Tracer(service="callvault")


def count(name: str) -> None:
    """One event counted under `name` (EventsReceived, EventsStored, ...), per vendor dimension."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def count_rejected(vendor: str, reason: str) -> None:
    """A rejected request, with its reason as a dimension of its own."""
    with single_metric(name="EventsRejected", unit=MetricUnit.Count, value=1, namespace="callvault") as metric:
        metric.add_dimension(name="vendor", value=vendor)
        metric.add_dimension(name="reason", value=reason)
