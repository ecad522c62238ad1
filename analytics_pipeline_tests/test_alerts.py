"""The alert sensor: a failed run, a failed check and a stale table each alerted once, through
the log locally and through SNS (moto) on AWS; passing checks and fresh tables are not."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

import boto3
import dagster as dg
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange
from moto import mock_aws

from analytics_pipeline.defs.alerts import build_lake_alerts, build_run_failure_alerts
from analytics_pipeline.resources.alerts import LogAlertSink
from analytics_pipeline.resources.aws.sns_alerts import SnsAlertSink

TABLE = dg.AssetKey(["table", "products"])


@dg.op
def broken() -> None:
    raise RuntimeError("the lake is on fire")


@dg.job
def failing_job() -> None:
    broken()


def record_trouble(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """A failed run; a check that passed, then failed; a table that was fresh, then stale."""
    run = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    for passed in (True, False):
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=TABLE,
                check_name="no_duplicate_keys",
                passed=passed,
                metadata={"failed_days": dg.MetadataValue.json([] if passed else ["2024-05-01"])},
            )
        )
    for new, old in (
        (FreshnessState.PASS, FreshnessState.UNKNOWN),
        (FreshnessState.FAIL, FreshnessState.PASS),
    ):
        instance.report_runless_asset_event(
            FreshnessStateChange(
                key=TABLE, new_state=new, previous_state=old, state_change_timestamp=time.time()
            )
        )
    return run


@dg.asset(
    key=TABLE,
    check_specs=[dg.AssetCheckSpec("no_duplicate_keys", asset=TABLE)],
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26)),
)
def products_table():  # never run: the sensor reads its check and freshness policy
    raise NotImplementedError


def tick(instance: dg.DagsterInstance, sink: dg.ConfigurableResource, cursor: str | None):
    sensor = build_lake_alerts()
    repository = dg.Definitions(assets=[products_table], sensors=[sensor]).get_repository_def()
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, repository_def=repository, resources={"alerts": sink}
    )
    return sensor.evaluate_tick(context).cursor


def alert_run_failure(
    instance: dg.DagsterInstance, run: dg.ExecuteInProcessResult, sink: dg.ConfigurableResource
) -> None:
    """What the daemon's run failure sensor does with the run's failure event."""
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alerts",
        dagster_instance=instance,
        dagster_run=run.dagster_run,
        dagster_event=run.get_run_failure_event(),
        resources={"alerts": sink},
    ).for_run_failure()
    build_run_failure_alerts()(context)


def test_each_failure_is_alerted_once_in_the_log(caplog):
    with dg.instance_for_test() as instance:
        run = record_trouble(instance)
        run_id = run.run_id
        with caplog.at_level(logging.WARNING, logger="analytics_pipeline.alerts"):
            alert_run_failure(instance, run, LogAlertSink())
            cursor = tick(instance, LogAlertSink(), None)
            first = [r.getMessage() for r in caplog.records]
            caplog.clear()
            tick(instance, LogAlertSink(), cursor)
            again = [r.getMessage() for r in caplog.records]

    assert len(first) == 3, first
    assert any("run_failure" in m and run_id in m and "failing_job" in m for m in first)
    assert any("check_failure: table/products" in m and "2024-05-01" in m for m in first)
    assert any("freshness_miss: table/products" in m for m in first)
    assert again == []  # the cursor moved past them: nothing twice


def test_alerts_reach_the_sns_topic_once_each():
    with mock_aws(), dg.instance_for_test() as instance:
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="analytics-alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
        run = record_trouble(instance)
        sink = SnsAlertSink(topic_arn=topic, region_name="us-east-1")

        alert_run_failure(instance, run, sink)
        cursor = tick(instance, sink, None)
        tick(instance, sink, cursor)

        messages = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
            messages += [json.loads(m["Body"]) for m in batch]
            for m in batch:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])

    kinds = sorted(json.loads(m["Message"])["kind"] for m in messages)
    assert kinds == ["check_failure", "freshness_miss", "run_failure"]


def test_a_check_failing_again_is_alerted_again_and_a_pass_is_not(caplog):
    def evaluate(passed: bool) -> None:
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(asset_key=TABLE, check_name="no_duplicate_keys", passed=passed)
        )

    with dg.instance_for_test() as instance, caplog.at_level(logging.WARNING):
        evaluate(False)
        cursor = tick(instance, LogAlertSink(), None)
        evaluate(True)
        cursor = tick(instance, LogAlertSink(), cursor)
        evaluate(False)
        tick(instance, LogAlertSink(), cursor)
        alerts = [r.getMessage() for r in caplog.records if r.name == "analytics_pipeline.alerts"]

    assert len(alerts) == 2 and all("check_failure" in a for a in alerts), alerts


def test_a_stale_source_table_is_alerted(caplog, settings):
    """The database source's tables carry a freshness policy too, so the sensor watches them."""
    from analytics_pipeline.definitions import build_definitions

    repository = build_definitions(settings).get_repository_def()
    rental = dg.AssetKey(["table", "rental"])
    with dg.instance_for_test() as instance, caplog.at_level(logging.WARNING):
        instance.report_runless_asset_event(
            FreshnessStateChange(
                key=rental,
                new_state=FreshnessState.FAIL,
                previous_state=FreshnessState.PASS,
                state_change_timestamp=time.time(),
            )
        )
        context = dg.build_sensor_context(
            instance=instance, repository_def=repository, resources={"alerts": LogAlertSink()}
        )
        build_lake_alerts().evaluate_tick(context)
    [message] = [r.getMessage() for r in caplog.records if "freshness_miss" in r.getMessage()]
    assert "freshness_miss: table/rental" in message and "is stale" in message
