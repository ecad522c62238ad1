"""Alerts published to the deployment's SNS topic (ANALYTICS_ALERTS_TOPIC_ARN)."""

from __future__ import annotations

from typing import Any

import boto3
from pydantic import PrivateAttr

from analytics_pipeline.resources.alerts import Alert, AlertSink


class SnsAlertSink(AlertSink):
    """One SNS message per alert: the subject names it, the body is the alert as JSON."""

    topic_arn: str
    region_name: str | None = None

    _client: Any = PrivateAttr(default=None)

    def sns_client(self) -> Any:
        if self._client is None:
            self._client = boto3.session.Session().client("sns", region_name=self.region_name)
        return self._client

    def send(self, alert: Alert) -> None:
        self.sns_client().publish(
            TopicArn=self.topic_arn,
            Subject=alert.subject(),
            Message=alert.body(),
            MessageAttributes={"kind": {"DataType": "String", "StringValue": alert.kind}},
        )
