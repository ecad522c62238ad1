"""What an automation tick asks for follows what changed since the last tick, whatever the
history: late data for an old day rebuilds that day, a backfill or a rebuild that already
ran is not asked for again, and nothing up to date is."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from analytics_pipeline.defs.keys import analytics_key, parquet_key, staged_key, table_key

BUILT = [parquet_key("products"), table_key("products"), analytics_key("daily_product_counts")]
FIRST_DAY = date(2024, 1, 1)
# Ticks a minute apart from 10:00 UTC: never across the hourly refresh's :30.
START = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


class Ticks:
    """The daemon's ticks over one instance, each from the previous tick's cursor."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance, self.count = defs, instance, 0
        self.cursor = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=START
        ).cursor

    def __call__(self) -> dict[str, set[str]]:
        self.count += 1
        result = dg.evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            cursor=self.cursor,
            evaluation_time=START + timedelta(minutes=self.count),
        )
        self.cursor = result.cursor
        return {
            key.to_user_string(): set(map(str, result.get_requested_partitions(key)))
            for key in self.defs.resolve_asset_graph().get_all_asset_keys()
            if result.get_num_requested(key)
        }


def _materialize(instance: dg.DagsterInstance, keys: list[dg.AssetKey], days: list[str]) -> None:
    for key in keys:
        for day in days:
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=day))


@pytest.fixture(params=[4, 40], ids=["4 days of history", "40 days of history"])
def history(request: pytest.FixtureRequest) -> Iterator[tuple[dg.DagsterInstance, list[str]]]:
    days = [(FIRST_DAY + timedelta(days=n)).isoformat() for n in range(request.param)]
    with dg.instance_for_test() as instance:
        _materialize(instance, [staged_key("products"), *BUILT], days)
        yield instance, days


def test_a_tick_asks_for_the_changed_day_alone(
    defs: dg.Definitions, history: tuple[dg.DagsterInstance, list[str]]
) -> None:
    instance, days = history
    tick = Ticks(defs, instance)
    assert tick() == {}  # the history is up to date

    late = days[1]
    _materialize(instance, [staged_key("products")], [late])  # late data for an old day
    assert tick() == {key.to_user_string(): {late} for key in BUILT}
    assert tick() == {}  # requested once, not again while it runs

    _materialize(instance, BUILT, [late])  # the requested run
    assert tick() == {}  # its own updates count as handled: no second rebuild

    _materialize(instance, BUILT, days)  # a backfill of every day from the UI
    assert tick() == {}
    _materialize(instance, [staged_key("products")], [days[-1]])  # after it, automation goes on
    assert tick() == {key.to_user_string(): {days[-1]} for key in BUILT}
