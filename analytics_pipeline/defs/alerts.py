"""One alert per thing that went wrong: a failed run, a failed asset check, a table that went
stale (its freshness policy failing), sent to the deployment's alert sink (SNS on AWS, the
log locally).

Failed runs come from Dagster's run failure sensor (its own cursor over run status changes);
checks and freshness from a sensor over each check's newest execution and each table's
freshness state, remembering what it alerted. Each failure is alerted once however often they
tick; a check that failed and passed again between two ticks is not alerted (its newest
execution passed).
"""

from __future__ import annotations

import json

import dagster as dg
from dagster._core.definitions.freshness import FreshnessState

from analytics_pipeline.resources.alerts import (
    CHECK_FAILURE,
    FRESHNESS_MISS,
    RUN_FAILURE,
    Alert,
    AlertSink,
)


def build_alert_sensors() -> list[dg.SensorDefinition]:
    return [build_run_failure_alerts(), build_lake_alerts()]


def build_run_failure_alerts() -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name="run_failure_alerts",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends each failed run to the alert sink (SNS topic "
        "ANALYTICS_ALERTS_TOPIC_ARN on AWS, the log locally).",
    )
    def run_failure_alerts(context: dg.RunFailureSensorContext, alerts: AlertSink) -> None:
        run = context.dagster_run
        message = context.failure_event.message or "failed"
        alerts.send(
            Alert(
                RUN_FAILURE,
                summary=f"run of {run.job_name} failed: {message}"[:500],
                run_id=run.run_id,
                partition=run.tags.get("dagster/partition"),
                link_path=f"/runs/{run.run_id}",
            )
        )

    return run_failure_alerts


def build_lake_alerts() -> dg.SensorDefinition:
    @dg.sensor(
        name="lake_alerts",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends failed asset checks and freshness misses to the alert sink (SNS "
        "topic ANALYTICS_ALERTS_TOPIC_ARN on AWS, the log locally), each once.",
    )
    def lake_alerts(context: dg.SensorEvaluationContext, alerts: AlertSink) -> dg.SkipReason:
        graph = context.repository_def.asset_graph  # type: ignore[union-attr]
        cursor = json.loads(context.cursor) if context.cursor else {"checks": {}, "stale": {}}
        found = failed_checks(context.instance, list(graph.asset_check_keys), cursor["checks"])
        found += stale_tables(context.instance, freshness_keys(graph), cursor["stale"])
        for alert in found:
            alerts.send(alert)
        context.update_cursor(json.dumps(cursor))
        return dg.SkipReason(f"{len(found)} alerts sent")

    return lake_alerts


def freshness_keys(graph: object) -> list[dg.AssetKey]:
    """Every asset with a freshness policy, those whose days another asset reports (the
    source's day tables, logged by its extract) included."""
    return [
        key
        for key in sorted(graph.get_all_asset_keys())  # type: ignore[attr-defined]
        if graph.get(key).freshness_policy is not None  # type: ignore[attr-defined]
    ]


def failed_checks(
    instance: dg.DagsterInstance, keys: list[dg.AssetCheckKey], seen: dict[str, int]
) -> list[Alert]:
    """Each check whose newest execution failed, once per execution (`seen`: check -> the
    execution id alerted or passed over last)."""
    alerts = []
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    for key, record in latest.items():
        name = key.to_user_string()
        if record.id <= seen.get(name, -1):
            continue
        event = record.event.dagster_event if record.event else None
        data = event.event_specific_data if event else None
        if isinstance(data, dg.AssetCheckEvaluation):
            seen[name] = record.id
            if not data.passed:
                alerts.append(check_alert(data, record.run_id))
    return alerts


def check_alert(data: dg.AssetCheckEvaluation, run_id: str | None) -> Alert:
    asset = data.asset_key.to_user_string()
    failed_days = data.metadata.get("failed_days")
    days = f" (days {failed_days.value})" if failed_days is not None else ""
    return Alert(
        CHECK_FAILURE,
        summary=f"check {data.check_name} of {asset} failed{days}",
        asset=asset,
        run_id=run_id or None,
        link_path=f"/assets/{asset}?view=checks",
    )


def stale_tables(
    instance: dg.DagsterInstance, keys: list[dg.AssetKey], seen: dict[str, float]
) -> list[Alert]:
    """Each table whose freshness state turned FAIL since it was last seen (`seen`: asset ->
    the time of the state change alerted or passed over last)."""
    alerts = []
    for key, record in instance.get_freshness_state_records(keys).items():
        asset, changed = key.to_user_string(), record.updated_at.timestamp()
        if changed <= seen.get(asset, 0.0):
            continue
        seen[asset] = changed
        if record.freshness_state == FreshnessState.FAIL:
            alerts.append(
                Alert(
                    FRESHNESS_MISS,
                    summary=f"{asset} is stale: not rebuilt within its freshness window",
                    asset=asset,
                    link_path=f"/assets/{asset}",
                )
            )
    return alerts
