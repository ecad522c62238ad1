"""Where alerts go, the deployment boundary of the alert sensor: the log locally
(`LogAlertSink`), the SNS topic ANALYTICS_ALERTS_TOPIC_ARN on AWS (resources/aws/sns_alerts.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

import dagster as dg

RUN_FAILURE, CHECK_FAILURE, FRESHNESS_MISS = "run_failure", "check_failure", "freshness_miss"


@dataclass(frozen=True)
class Alert:
    """One thing that went wrong, with what an on-call reader needs to find it."""

    kind: str  # RUN_FAILURE, CHECK_FAILURE or FRESHNESS_MISS
    summary: str
    asset: str | None = None
    run_id: str | None = None
    partition: str | None = None
    link_path: str | None = None  # path in the Dagster UI, e.g. /runs/<id>

    def subject(self) -> str:
        # SNS subjects are at most 100 characters.
        return f"[analytics] {self.kind}: {self.asset or self.run_id or ''}"[:100]

    def body(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None})


class AlertSink(dg.ConfigurableResource):
    """Sends alerts somewhere a person will see them."""

    def send(self, alert: Alert) -> None:
        raise NotImplementedError


class LogAlertSink(AlertSink):
    """Local deployments: alerts are warnings in the log."""

    def send(self, alert: Alert) -> None:
        logging.getLogger("analytics_pipeline.alerts").warning(
            "%s %s", alert.subject(), alert.body()
        )
