"""The analytics refresh schedule: every hour, yesterday's and today's analytics partitions."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from analytics_pipeline.defs.schedules import ANALYTICS_JOB

SCHEDULE = "analytics_refresh_schedule"


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, at: datetime):
    schedule = defs.resolve_schedule_def(SCHEDULE)
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=at, repository_def=defs.get_repository_def()
    )
    return schedule.evaluate_tick(context)


def test_schedule_runs_the_analytics_job_hourly_in_utc(defs: dg.Definitions) -> None:
    schedule = defs.resolve_schedule_def(SCHEDULE)
    assert schedule.job_name == ANALYTICS_JOB
    assert schedule.cron_schedule == "30 * * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_analytics_job_selects_exactly_the_analytics_assets(defs: dg.Definitions) -> None:
    job = defs.resolve_job_def(ANALYTICS_JOB)
    analytics = {
        k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] == "analytics"
    }
    assert job.asset_layer.selected_asset_keys == analytics
    assert len(analytics) == 4


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2024, 3, 5, 10, 30, tzinfo=UTC), ["2024-03-04", "2024-03-05"]),
        (datetime(2024, 3, 1, 0, 30, tzinfo=UTC), ["2024-02-29", "2024-03-01"]),
        (datetime(2025, 1, 1, 23, 30, tzinfo=UTC), ["2024-12-31", "2025-01-01"]),
    ],
)
def test_tick_requests_yesterday_and_today(
    defs: dg.Definitions, instance: dg.DagsterInstance, at: datetime, expected: list[str]
) -> None:
    result = tick(defs, instance, at)
    assert [r.partition_key for r in result.run_requests] == expected


def test_tick_run_keys_are_unique_per_day_and_tick(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    ten = tick(defs, instance, datetime(2024, 3, 5, 10, 30, tzinfo=UTC)).run_requests
    eleven = tick(defs, instance, datetime(2024, 3, 5, 11, 30, tzinfo=UTC)).run_requests
    keys = [r.run_key for r in ten + eleven]
    # A fixed key per day would be skipped after its first run: the refresh would never refresh.
    assert len(set(keys)) == 4


def test_tick_requests_are_partitions_of_the_analytics_job(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    at = datetime(2024, 3, 5, 10, 30, tzinfo=UTC)
    job = defs.resolve_job_def(ANALYTICS_JOB)
    assert job.partitions_def is not None
    existing = set(job.partitions_def.get_partition_keys(current_time=at))
    for request in tick(defs, instance, at).run_requests:
        assert request.job_name in (None, ANALYTICS_JOB)
        assert request.partition_key in existing
