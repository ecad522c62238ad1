"""The stale-day check reads what changed since the last check, never the whole history,
and finds exactly what a check of every day finds."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pytest

from analytics_pipeline.defs.keys import analytics_key, parquet_key, staged_key, table_key
from analytics_pipeline.defs.stale_check import StaleCheck, check_stale
from analytics_pipeline.defs.staleness import build_stale_days_sensor

CHAIN = [
    staged_key("products"),
    parquet_key("products"),
    table_key("products"),
    analytics_key("daily_product_counts"),
]
FIRST_DAY = date(2024, 1, 1)


def _days(n: int) -> list[str]:
    return [(FIRST_DAY + timedelta(days=i)).isoformat() for i in range(n)]


def _materialize(instance: dg.DagsterInstance, key: dg.AssetKey, *days: str) -> None:
    for day in days:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=day))


def _history(instance: dg.DagsterInstance, n: int) -> list[str]:
    """n days of the products chain, each built after what it is built from."""
    days = _days(n)
    for key in CHAIN:
        _materialize(instance, key, *days)
    return days


def _stale_days(check: StaleCheck) -> dict[dg.AssetKey, set[str]]:
    return {key: set(days) for key, days in check.stale.items()}


def test_a_late_day_is_found_by_comparing_that_day_alone(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    graph = defs.resolve_asset_graph()
    days = _history(instance, 20)
    first = check_stale(graph, instance)
    assert first.stale == {}
    assert first.days_compared == 3 * len(days)  # parquet, table, analytics: every day once

    _materialize(instance, staged_key("products"), days[3])  # late data for an old day
    late = check_stale(graph, instance, first)
    assert _stale_days(late) == {parquet_key("products"): {days[3]}}
    assert late.days_compared == 1

    # Not rebuilt yet: the day stays found (and is compared again) until it is.
    again = check_stale(graph, instance, late)
    assert _stale_days(again) == {parquet_key("products"): {days[3]}}
    assert again.days_compared == 1

    _materialize(instance, parquet_key("products"), days[3])
    rebuilt = check_stale(graph, instance, again)
    assert _stale_days(rebuilt) == {table_key("products"): {days[3]}}
    assert rebuilt.days_compared == 2  # the parquet day carried, the table day updated

    _materialize(instance, table_key("products"), days[3])
    _materialize(instance, analytics_key("daily_product_counts"), days[3])
    settled = check_stale(graph, instance, check_stale(graph, instance, rebuilt))
    assert settled.stale == {}
    assert settled.days_compared == 0


def _rows_read(instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The days each read of latest materializations returns, from here on."""
    rows: list[int] = []
    real_read = instance.get_latest_storage_id_by_partition

    def counted(*args: Any, **kwargs: Any) -> Mapping[str, int]:
        result = real_read(*args, **kwargs)
        rows.append(len(result))
        return result

    monkeypatch.setattr(instance, "get_latest_storage_id_by_partition", counted)
    return rows


def test_the_work_of_a_check_does_not_grow_with_history(
    defs: dg.Definitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = defs.resolve_asset_graph()
    work = []
    for history in (5, 30):
        with dg.instance_for_test() as fresh, monkeypatch.context() as patch:
            days = _history(fresh, history)
            check = check_stale(graph, fresh)
            rows = _rows_read(fresh, patch)
            quiet = check_stale(graph, fresh, check)
            quiet_rows = list(rows)
            _materialize(fresh, staged_key("products"), days[0], days[-1])
            changed = check_stale(graph, fresh, quiet)
            work.append((quiet.days_compared, quiet_rows, changed.days_compared, rows))
    # Nothing new: no day is read. Two days changed: staged's two days since the last
    # check, then those two days of staged and of parquet; the same at 5 and 30 days.
    assert work == [(0, [], 2, [2, 2, 2])] * 2


def test_checks_from_a_cursor_find_what_a_check_of_every_day_finds(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    graph = defs.resolve_asset_graph()
    days = _history(instance, 6)
    rng = random.Random(16)
    check = check_stale(graph, instance)
    for _ in range(40):
        key = rng.choice(CHAIN)
        _materialize(instance, key, *rng.sample(days, rng.randint(1, 3)))
        # Through the sensor's cursor text, as the daemon stores it between ticks.
        check = check_stale(graph, instance, StaleCheck.from_json(check.to_json()))
        assert check.stale == check_stale(graph, instance).stale


def test_an_unreadable_cursor_starts_from_every_day(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    for text in (None, "", "not json", '{"stale": {}}', '{"read_up_to": [1], "stale": {}}'):
        assert StaleCheck.from_json(text) is None
    days = _history(instance, 3)
    _materialize(instance, staged_key("products"), days[1])
    graph = defs.resolve_asset_graph()
    check = check_stale(graph, instance, StaleCheck.from_json("not json"))
    assert _stale_days(check) == {parquet_key("products"): {days[1]}}


def _sensor_tick(
    defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None
) -> tuple[list[dg.RunRequest], str | None]:
    context = dg.build_sensor_context(
        instance=instance, repository_def=defs.get_repository_def(), cursor=cursor
    )
    data = build_stale_days_sensor().evaluate_tick(context)
    return list(data.run_requests or []), data.cursor


def test_the_sensor_carries_its_check_between_ticks(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    days = _history(instance, 10)
    requests, cursor = _sensor_tick(defs, instance, None)
    assert requests == []
    _materialize(instance, staged_key("products"), days[7])
    [first], cursor = _sensor_tick(defs, instance, cursor)
    assert (first.partition_key, first.asset_selection) == (days[7], [parquet_key("products")])
    # The run has not happened yet: the next tick asks again, under the same key.
    [again], cursor = _sensor_tick(defs, instance, cursor)
    assert again.run_key == first.run_key
    _materialize(instance, staged_key("products"), days[7])  # newer data for the same day
    [newer], cursor = _sensor_tick(defs, instance, cursor)
    assert newer.partition_key == days[7]
    assert newer.run_key != first.run_key
    assert StaleCheck.from_json(cursor) is not None


def _new_content(instance: dg.DagsterInstance, key: dg.AssetKey, version: str) -> None:
    """A snapshot table's materialization with its content as data version."""
    tags = {"dagster/data_version": version, "dagster/data_version_is_user_provided": "true"}
    instance.report_runless_asset_event(dg.AssetMaterialization(key, tags=tags))


def test_a_dimension_change_reads_every_day_once_and_then_only_what_it_found(
    defs: dg.Definitions, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = defs.resolve_asset_graph()
    revenue = graph.get(analytics_key("daily_rental_revenue_by_category"))
    by_day = sorted(k for k in revenue.parent_keys if graph.get(k).partitions_def is not None)
    snapshots = sorted(set(revenue.parent_keys) - set(by_day))
    assert table_key("category") in snapshots and by_day
    days = _days(30)
    for key in snapshots:
        _new_content(instance, key, "v1")
    for key in by_day:
        _materialize(instance, key, *days)
    _materialize(instance, revenue.key, *days)
    _materialize(instance, analytics_key("daily_active_customers"), *days)
    check = check_stale(graph, instance)
    assert check.stale == {}

    _new_content(instance, table_key("category"), "v2")  # a category renamed
    found = check_stale(graph, instance, check)
    assert set(found.stale.get(revenue.key, {})) == set(days)

    _materialize(instance, revenue.key, *days[:10])  # a third of the days rebuilt
    partly = check_stale(graph, instance, found)
    assert set(partly.stale[revenue.key]) == set(days[10:])

    _materialize(instance, revenue.key, *days[10:])
    settled = check_stale(graph, instance, partly)
    # Once the change's days are rebuilt, a check reads no day list at all (it used to read
    # every day of every parent on each check while the change was recent).
    rows = _rows_read(instance, monkeypatch)
    quiet = check_stale(graph, instance, StaleCheck.from_json(settled.to_json()))
    assert settled.stale == quiet.stale == {} and rows == []

    _new_content(instance, table_key("category"), "v3")  # changed again: found again
    again = check_stale(graph, instance, quiet)
    assert set(again.stale[revenue.key]) == set(days)
