"""Alert sinks: SNS (read back through an SQS queue subscribed to a moto topic) and the log."""

import json
import logging

import boto3
import pytest

from analytics_pipeline.resources.alerts import RUN_FAILURE, Alert, LogAlertSink
from analytics_pipeline.resources.aws.sns_alerts import SnsAlertSink

ALERT = Alert(
    kind=RUN_FAILURE,
    summary="step products_parquet failed",
    asset="products_parquet",
    run_id="abc123",
    partition="2026-12-01",
    link_path="/runs/abc123",
)


@pytest.mark.usefixtures("aws")
def test_sns_sink_publishes_one_message_per_alert() -> None:
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic_arn = sns.create_topic(Name="analytics-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts-reader")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    SnsAlertSink(topic_arn=topic_arn).send(ALERT)

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    envelope = json.loads(messages[0]["Body"])
    assert envelope["Subject"] == "[analytics] run_failure: products_parquet"
    assert json.loads(envelope["Message"]) == {
        "kind": "run_failure",
        "summary": "step products_parquet failed",
        "asset": "products_parquet",
        "run_id": "abc123",
        "partition": "2026-12-01",
        "link_path": "/runs/abc123",
    }


@pytest.mark.usefixtures("aws")
def test_sns_sink_to_a_missing_topic_raises() -> None:
    sink = SnsAlertSink(topic_arn="arn:aws:sns:us-east-1:123456789012:nowhere")
    with pytest.raises(Exception, match="NotFound|does not exist"):
        sink.send(ALERT)


def test_log_sink_writes_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="analytics_pipeline.alerts"):
        LogAlertSink().send(ALERT)
    (record,) = caplog.records
    assert "run_failure: products_parquet" in record.getMessage()
    assert '"partition": "2026-12-01"' in record.getMessage()


def test_long_subject_is_cut_to_the_sns_limit() -> None:
    alert = Alert(kind=RUN_FAILURE, summary="x", asset="a" * 200)
    assert len(alert.subject()) == 100
