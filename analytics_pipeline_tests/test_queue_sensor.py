"""The SQS landing sensor deletes a tick's messages only once every run it requested exists."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import boto3
import dagster as dg

from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.settings import AwsSettings, Settings


@dg.op
def _noop() -> None:
    pass


@dg.job
def _stand_in() -> None:
    _noop()


def _notification(key: str) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "eventTime": "2024-03-02T10:00:00.000Z",
                    "s3": {
                        "bucket": {"name": "landing"},
                        "object": {"key": key, "size": 10, "eTag": "e"},
                    },
                }
            ]
        }
    )


def _in_queue(sqs, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def test_messages_are_deleted_only_after_every_run_of_their_tick_exists(
    aws: None, tmp_path: Path
) -> None:
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    for bucket in ("landing", "lake"):
        s3.create_bucket(Bucket=bucket)
    queue_url = sqs.create_queue(QueueName="arrivals")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody=_notification("landing/products/1.json"))
    sqs.send_message(QueueUrl=queue_url, MessageBody=_notification("landing/web_requests/a.json"))
    settings = Settings(
        env="aws",
        lake_dir=tmp_path,
        partitions_start=date(2020, 1, 1),
        ingest_batch_files=10,
        max_landing_file_bytes=1 << 20,
        landing_settle_seconds=0,
        aws=AwsSettings("landing", "lake", "s3://results/", "lake_db", "primary", queue_url),
    )
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def("landing_queue_sensor")
    with dg.instance_for_test() as instance:

        def tick(cursor: str | None):
            context = dg.build_sensor_context(
                instance=instance,
                cursor=cursor,
                definitions=defs,
                resources=dict(defs.resources or {}),
            )
            return sensor.evaluate_tick(context)

        first = tick(None)
        run_keys = [r.run_key for r in first.run_requests or []]
        assert len(run_keys) == 2
        assert _in_queue(sqs, queue_url) == 2

        _stand_in.execute_in_process(instance=instance, tags={"dagster/run_key": run_keys[0]})
        second = tick(first.cursor)
        assert _in_queue(sqs, queue_url) == 2, "one run of the tick is still missing"

        _stand_in.execute_in_process(instance=instance, tags={"dagster/run_key": run_keys[1]})
        third = tick(second.cursor)
        assert _in_queue(sqs, queue_url) == 0
        assert json.loads(third.cursor or "[]") == []
