"""Keep the analytics layer fresh even when no arrival triggers it."""

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    # What define_asset_job returns; dagster does not export the name.
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

ANALYTICS_JOB = "analytics_job"


def analytics_job() -> "UnresolvedAssetJobDefinition":
    return dg.define_asset_job(
        ANALYTICS_JOB,
        selection=dg.AssetSelection.groups("analytics"),
        description="Recompute the analytics tables for one day from the catalog's tables.",
    )


def build_analytics_schedule(
    job: "dg.JobDefinition | UnresolvedAssetJobDefinition",
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="analytics_refresh_schedule",
        job=job,
        cron_schedule="30 * * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every hour: recompute today's and yesterday's analytics partitions.",
    )
    def analytics_refresh(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time or datetime.now(UTC)
        for day in (tick - timedelta(days=1), tick):
            dt = day.strftime("%Y-%m-%d")
            yield dg.RunRequest(run_key=f"analytics-{dt}-{tick:%Y%m%dT%H%M}", partition_key=dt)

    return analytics_refresh
