"""Powertools Logger and Metrics, shared by every function.

Logs carry vendor, webhook, event_id and session_id as keys; never a body, a header value or
transcript text.

Tracing is Lambda's own (`Tracing: Active` in template.yaml: a segment per invocation with its
init and invoke time). The X-Ray SDK behind Powertools' Tracer is left out on purpose: at import
it builds two botocore clients for sampling rules, measured at +150-480 ms per cold start and
36 MB of layer (docs/decisions.md).
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

# Keys Powertools puts on every line that CloudWatch already has once per invocation (the log
# group names the function; its REPORT line gives the memory and a cold start's init time) or
# that never vary; CloudWatch bills each line's bytes, and a webhook logs one line per event.
# Where in the code a line came from is kept for warnings and errors.
_REDUNDANT_KEYS = ("function_arn", "function_name", "function_memory_size", "cold_start", "service")
_QUIET_LEVELS = ("DEBUG", "INFO")


class _LeanFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: dict[str, Any]) -> str:  # type: ignore[override]
        for key in _REDUNDANT_KEYS:
            log.pop(key, None)
        if log.get("level") in _QUIET_LEVELS:
            log.pop("location", None)
        return super().serialize(log)


SERVICE = "callvault"
logger = Logger(service=SERVICE, logger_formatter=_LeanFormatter())
metrics = Metrics(namespace="callvault", service=SERVICE)


def count(name: str) -> None:
    """One event counted under `name` (EventsReceived, EventsStored, ...), per vendor dimension."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def count_with(name: str, value: float = 1, **dimensions: str) -> None:
    """A count (one, unless `value` says) with dimensions of its own (a reason, say), emitted at once.

    Always with `service` too, as `metrics` has it: POWERTOOLS_SERVICE_NAME (template.yaml) would add
    it anyway, and the alarms, which match exact dimension sets, name it whatever the environment."""
    if is_metrics_disabled():  # single_metric prints regardless of POWERTOOLS_METRICS_DISABLED
        return
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace="callvault") as metric:
        for dimension, text in {"service": SERVICE, **dimensions}.items():
            metric.add_dimension(name=dimension, value=text)


def count_rejected(vendor: str, reason: str) -> None:
    """A rejected request, with its reason as a dimension of its own."""
    count_with("EventsRejected", vendor=vendor, reason=reason)
