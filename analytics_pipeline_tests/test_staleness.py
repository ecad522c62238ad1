"""The safety net for the automation: a day built before its parent's latest update is
rebuilt, whatever the automation's ticks saw."""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from analytics_pipeline.cli import process
from analytics_pipeline.cli.process import process_landing
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.defs.keys import analytics_key, parquet_key, table_key
from analytics_pipeline.defs.staleness import (
    RANGE_END_TAG,
    STALE_ATTEMPTS,
    Run,
    build_stale_days_sensor,
    stale_runs,
)
from analytics_pipeline.resources import day_builder
from analytics_pipeline.settings import Settings
from analytics_pipeline_tests.lake_helpers import drop, query

DAY = "2024-03-02"


@pytest.fixture
def defs(settings: Settings) -> dg.Definitions:
    """Ingest runs that leave their days to the automation (as one does with more days than
    ANALYTICS_INGEST_BUILD_DAYS, or when its table is busy): the days this net is for."""
    return build_definitions(dataclasses.replace(settings, ingest_build_days=0))


def _product(lake_dir: Path, id_: int, day: str = DAY) -> None:
    drop(lake_dir, "products", f"{id_}.json", json.dumps({"id": id_, "date": day, "product": "A"}))


def _ingest_only(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """What the landing sensor and its run do, with no automation tick after it: the late
    file staged, as when a tick counted a rebuild of the day as having handled it."""
    sensor = defs.resolve_sensor_def("products_landing_sensor")
    context = dg.build_sensor_context(instance=instance, resources=dict(defs.resources or {}))
    for request in sensor.evaluate_tick(context).run_requests or []:
        result = defs.resolve_job_def("ingest_products").execute_in_process(
            run_config=request.run_config, instance=instance, tags=request.tags
        )
        assert result.success


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    sensor = build_stale_days_sensor()
    context = dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
    return list(sensor.evaluate_tick(context).run_requests or [])


def test_a_late_file_the_automation_missed_is_served_after_the_sensors_ticks(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    _product(lake_dir, 1)
    assert process_landing(defs, instance).failed_runs == []
    assert _tick(defs, instance) == []  # everything built after what it is built from

    _product(lake_dir, 2)
    _ingest_only(defs, instance)
    graph = defs.resolve_asset_graph()
    assert stale_runs(graph, instance) == [((DAY, DAY), [parquet_key("products")])]

    built = []
    for _ in range(5):  # parquet, then table, then analytics: one layer per tick
        requests = _tick(defs, instance)
        if not requests:
            break
        for request in requests:
            assert request.partition_key == DAY
            built += request.asset_selection or []
            result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
                instance=instance,
                asset_selection=request.asset_selection,
                partition_key=request.partition_key,
                tags=request.tags,
            )
            assert result.success
    assert built == [
        parquet_key("products"),
        table_key("products"),
        analytics_key("daily_product_counts"),
    ]
    assert query(lake_dir, f"SELECT count(*) FROM products WHERE dt = '{DAY}'") == [(2,)]


def test_the_same_stale_state_is_requested_under_one_run_key(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    _product(lake_dir, 1)
    assert process_landing(defs, instance).failed_runs == []
    _product(lake_dir, 2)
    _ingest_only(defs, instance)
    first, again = _tick(defs, instance), _tick(defs, instance)
    assert [r.run_key for r in first] == [r.run_key for r in again]  # the daemon runs it once
    _product(lake_dir, 3)
    _ingest_only(defs, instance)
    assert [r.run_key for r in _tick(defs, instance)] != [r.run_key for r in first]


def test_a_file_staged_while_its_day_is_built_is_in_the_build(
    lake_dir: Path,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _product(lake_dir, 1)
    _ingest_only(defs, instance)
    real_compact = day_builder.compact_day
    calls = []

    def compact_then_stage_a_late_file(*args: Any, **kwargs: Any) -> Any:
        day = real_compact(*args, **kwargs)
        if not calls:  # the late file lands after the staged files were read
            _product(lake_dir, 2)
            _ingest_only(defs, instance)
        calls.append(day.staged_files)
        return day

    monkeypatch.setattr(day_builder, "compact_day", compact_then_stage_a_late_file)
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance,
        asset_selection=[parquet_key("products"), table_key("products")],
        partition_key=DAY,
    )
    assert result.success
    assert calls == [1, 2]  # built again with the late file
    assert query(lake_dir, f"SELECT count(*) FROM products WHERE dt = '{DAY}'") == [(2,)]
    # Only the analytics (not built here) wait; the Parquet and table are up to date.
    stale = stale_runs(defs.resolve_asset_graph(), instance)
    assert stale == [((DAY, DAY), [analytics_key("daily_product_counts")])]


def _run_building(
    instance: dg.DagsterInstance,
    key: dg.AssetKey,
    tags: dict[str, str],
    status: dg.DagsterRunStatus,
) -> None:
    """A run of `key` for the days its tags name, recorded as the daemon would record it."""
    instance.add_run(
        dg.DagsterRun(
            job_name="__ASSET_JOB",
            run_id=str(uuid.uuid4()),
            status=status,
            tags=tags,
            asset_selection=frozenset({key}),
        )
    )


@pytest.mark.parametrize(
    "tags",
    [
        {"dagster/partition": DAY},
        {"dagster/asset_partition_range_start": "2024-03-01", RANGE_END_TAG: "2024-03-05"},
    ],
    ids=["one-day run", "ranged run"],
)
def test_the_sensor_leaves_alone_a_day_a_run_is_already_rebuilding(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance, tags: dict[str, str]
) -> None:
    _product(lake_dir, 1)
    assert process_landing(defs, instance).failed_runs == []
    _product(lake_dir, 2)
    _ingest_only(defs, instance)
    [request] = _tick(defs, instance)
    assert request.asset_selection == [parquet_key("products")]

    _run_building(instance, table_key("products"), tags, dg.DagsterRunStatus.STARTED)
    assert len(_tick(defs, instance)) == 1  # another asset's run: the day is still wanted
    _run_building(instance, parquet_key("products"), tags, dg.DagsterRunStatus.STARTING)
    assert _tick(defs, instance) == []  # a second rebuild would only race the first
    for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTING])):
        instance.report_run_failed(run)  # the rebuild died: the day is wanted again
    assert len(_tick(defs, instance)) == 1


def test_make_process_rebuilds_a_day_the_automation_missed(
    lake_dir: Path,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _product(lake_dir, 1)
    assert process_landing(defs, instance).failed_runs == []
    real_requested = process._requested_runs

    def table_update_missed(*args: Any) -> list[Run]:
        # As when the automation reads more updated days than it fetches one by one and
        # counts a newer parent as handled: the table's day is never requested.
        return [
            (days, [k for k in keys if k != table_key("products")])
            for days, keys in real_requested(*args)
            if keys != [table_key("products")]
        ]

    monkeypatch.setattr(process, "_requested_runs", table_update_missed)
    _product(lake_dir, 2)  # staged by this make process, after it started
    summary = process_landing(defs, instance)
    assert summary.failed_runs == []
    assert summary.materialized["table/products"] == 1
    assert query(lake_dir, f"SELECT count(*) FROM products WHERE dt = '{DAY}'") == [(2,)]
    assert stale_runs(defs.resolve_asset_graph(), instance) == []


def test_a_failed_stale_rebuild_is_requested_again_a_few_times(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    _product(lake_dir, 1)
    assert process_landing(defs, instance).failed_runs == []
    _product(lake_dir, 2)
    _ingest_only(defs, instance)
    keys = []
    for _ in range(STALE_ATTEMPTS):
        [request] = _tick(defs, instance)
        keys.append(request.run_key)
        # The daemon's run of it, killed and marked failed: under the same run key it would
        # be skipped for ever, and the day never served.
        instance.add_run(
            dg.DagsterRun(
                job_name="__ASSET_JOB",
                run_id=str(uuid.uuid4()),
                status=dg.DagsterRunStatus.FAILURE,
                tags=request.tags,
                asset_selection=frozenset(request.asset_selection or []),
            )
        )
    assert len(set(keys)) == STALE_ATTEMPTS
    assert _tick(defs, instance) == []  # a day that keeps failing is left to a person
