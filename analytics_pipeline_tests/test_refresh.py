"""The hourly refresh, as automation: at :30 UTC, yesterday's and today's analytics, once."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from analytics_pipeline.defs.analytics import ANALYTICS as ANALYTICS_SPECS
from analytics_pipeline.defs.keys import analytics_key

ANALYTICS = dg.AssetSelection.groups("analytics")


def analytics_keys(defs: dg.Definitions) -> set[dg.AssetKey]:
    return ANALYTICS.resolve(defs.resolve_asset_graph())


def refreshed_keys(defs: dg.Definitions) -> set[dg.AssetKey]:
    """The analytics refreshed hourly: not those over the database source, which its
    extract's reports of changed days and dimensions keep fresh."""
    refreshed = {analytics_key(spec.name) for spec in ANALYTICS_SPECS if spec.hourly_refresh}
    assert refreshed < analytics_keys(defs)
    return refreshed


def seed_tables(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    days: list[str],
    skip: frozenset = frozenset(),
) -> None:
    """The refreshed analytics' tables hold these days (as if their data had arrived)."""
    graph = defs.resolve_asset_graph()
    tables = {p for k in refreshed_keys(defs) for p in graph.get(k).parent_keys} - skip
    for table in tables:
        for day in days:
            instance.report_runless_asset_event(dg.AssetMaterialization(table, partition=day))


def requested(result, keys: set[dg.AssetKey]) -> dict[dg.AssetKey, list[str]]:
    return {k: sorted(result.get_requested_partitions(k)) for k in keys}


def test_no_refresh_schedule_or_job_beside_the_automation(defs: dg.Definitions) -> None:
    # The only schedule is the database source's extract; nothing schedules the analytics.
    schedules = defs.get_repository_def().schedule_defs
    assert [s.name for s in schedules] == ["extract_movie_rental_hourly"]
    assert all(s.job_name == "extract_movie_rental" for s in schedules)
    assert "analytics_job" not in {j.name for j in defs.get_repository_def().get_all_jobs()}
    assert len(analytics_keys(defs)) == len(ANALYTICS_SPECS)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (datetime(2024, 3, 5, 10, 0), datetime(2024, 3, 5, 10, 31), ["2024-03-04", "2024-03-05"]),
        (datetime(2024, 3, 1, 0, 0), datetime(2024, 3, 1, 0, 31), ["2024-02-29", "2024-03-01"]),
        (datetime(2025, 1, 1, 23, 0), datetime(2025, 1, 1, 23, 45), ["2024-12-31", "2025-01-01"]),
    ],
)
def test_tick_past_the_cron_requests_yesterday_and_today(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    before: datetime,
    after: datetime,
    expected: list[str],
) -> None:
    keys = analytics_keys(defs)
    seed_tables(defs, instance, expected)
    first = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=before.replace(tzinfo=UTC)
    )
    assert requested(first, keys) == {k: [] for k in keys}
    second = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=first.cursor, evaluation_time=after.replace(tzinfo=UTC)
    )
    refreshed = refreshed_keys(defs)
    assert requested(second, keys) == {k: expected if k in refreshed else [] for k in keys}


def test_refresh_is_once_per_hour(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    keys = analytics_keys(defs)
    seed_tables(defs, instance, ["2024-03-04", "2024-03-05"])
    cursor = None
    counts = []
    # 10:00 (before the tick), 10:31, 10:50 (same hour: nothing new), 11:31 (the next tick).
    for hour, minute in [(10, 0), (10, 31), (10, 50), (11, 31)]:
        result = dg.evaluate_automation_conditions(
            defs=defs,
            instance=instance,
            cursor=cursor,
            evaluation_time=datetime(2024, 3, 5, hour, minute, tzinfo=UTC),
        )
        cursor = result.cursor
        counts.append(sum(len(v) for v in requested(result, keys).values()))
    days = 2 * len(refreshed_keys(defs))  # yesterday and today of each refreshed asset
    assert counts == [0, days, 0, days]


def test_no_refresh_of_a_day_one_of_its_tables_lacks(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    # A dataset that has not arrived has no table: its analytics would fail every hour.
    # sign_in_events lacks both days, so daily_user_events (over both tables) waits; the
    # others are refreshed; and with no table holding a day, nothing is.
    graph = defs.resolve_asset_graph()
    user_events = analytics_key("daily_user_events")
    lacking = next(p for p in graph.get(user_events).parent_keys if "sign_in" in p.to_user_string())
    seed_tables(defs, instance, ["2024-03-04"], skip=frozenset({lacking}))
    keys = analytics_keys(defs)
    first = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=datetime(2024, 3, 5, 10, tzinfo=UTC)
    )
    second = dg.evaluate_automation_conditions(
        defs=defs,
        instance=instance,
        cursor=first.cursor,
        evaluation_time=datetime(2024, 3, 5, 10, 31, tzinfo=UTC),
    )
    refreshed = refreshed_keys(defs) - {user_events}
    assert requested(second, keys) == {k: ["2024-03-04"] if k in refreshed else [] for k in keys}
