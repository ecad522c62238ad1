"""Keep the analytics layer fresh even when no arrival triggers it: an hourly refresh."""

from datetime import timedelta

import dagster as dg

from analytics_pipeline.defs.keys import rebuild_on_upstream_update

REFRESH_CRON = "30 * * * *"


def refresh_recent_days_hourly() -> dg.AutomationCondition:
    """Every hour at :30 UTC, today's and yesterday's partitions once each.

    Unlike `on_cron`, no upstream update is required: the refresh exists for the hours in
    which nothing arrived. The partitions reach a day ahead of now (records may be early),
    so the latest window is tomorrow: three days back from it, minus tomorrow, leaves
    yesterday and today.

    Only days every table of the SQL holds: a dataset that has not arrived yet has no table,
    and its analytics would fail every hour (a day without rows has nothing to refresh;
    its arrival rebuilds it).
    """
    recent = dg.AutomationCondition.in_latest_time_window(timedelta(days=3))
    tomorrow = dg.AutomationCondition.in_latest_time_window(timedelta(days=1))
    # Typed as the general condition: dagster's stubs type cron_tick_passed for asset keys only.
    tick: dg.AutomationCondition = dg.AutomationCondition.cron_tick_passed(REFRESH_CRON, "UTC")
    tables_hold_the_day = dg.AutomationCondition.all_deps_match(
        ~dg.AutomationCondition.missing()
    ).with_label("tables_hold_the_day")
    return (
        recent
        & ~tomorrow
        & tick.since_last_handled()
        & ~dg.AutomationCondition.in_progress()
        & tables_hold_the_day
    ).with_label("refresh_recent_days_hourly")


def analytics_automation(
    snapshots: tuple[dg.AssetKey, ...] = (), hourly: bool = True
) -> dg.AutomationCondition:
    """A day is rebuilt when its tables change, and (hourly) the recent days regardless."""
    rebuild = rebuild_on_upstream_update(snapshots)
    return rebuild | refresh_recent_days_hourly() if hourly else rebuild
