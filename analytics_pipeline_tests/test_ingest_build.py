"""An ingest run that staged a few days builds their Parquet and table itself: one run from a
dropped file to its table, each day built once, the analytics left to the automation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dagster as dg

from analytics_pipeline.cli.process import headless_definitions, process_landing
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.defs.keys import (
    analytics_key,
    ingest_job_name,
    parquet_key,
    staged_key,
    table_key,
)
from analytics_pipeline.defs.sensors import ingest_run_config
from analytics_pipeline.resources.local.catalog import CATALOG_FILE
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.settings import Settings
from analytics_pipeline_tests.lake_helpers import drop, landing_files, query

DAYS = ["2024-03-02", "2024-03-03"]


def drop_products(lake_dir: Path) -> None:
    for n, day in enumerate(DAYS * 2):
        drop(lake_dir, "products", f"{n}.json", f'{{"id": {n}, "date": "{day}", "product": "A"}}')


def materializations(instance: dg.DagsterInstance, key: dg.AssetKey) -> list[dg.EventLogRecord]:
    return list(instance.fetch_materializations(key, limit=100).records)


def ingest_run_id(instance: dg.DagsterInstance) -> str:
    (run,) = instance.get_runs(dg.RunsFilter(job_name=ingest_job_name("products")))
    return run.run_id


def test_the_ingest_run_builds_the_days_it_staged_and_nothing_is_built_twice(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    drop_products(lake_dir)
    summary = process_landing(defs, instance)
    assert summary.failed_runs == []
    ingest = ingest_run_id(instance)
    for key in (parquet_key("products"), table_key("products")):
        records = materializations(instance, key)
        # Each day once, by the ingest run: the automation saw them handled.
        assert sorted(r.partition_key for r in records) == DAYS, key
        assert {r.run_id for r in records} == {ingest}, key
    checks = instance.event_log_storage.get_event_records(
        dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    )
    built_checks = {
        (r.event_log_entry.dagster_event.event_specific_data.asset_key, r.run_id): (
            r.event_log_entry.dagster_event.event_specific_data.passed
        )
        for r in checks
        if r.event_log_entry.dagster_event
    }
    assert built_checks[(parquet_key("products"), ingest)] is True
    assert built_checks[(table_key("products"), ingest)] is True
    # Recorded after the day's staged event, so nothing upstream looks newer.
    staged = materializations(instance, staged_key("products"))
    assert max(r.storage_id for r in staged) < min(
        r.storage_id for r in materializations(instance, parquet_key("products"))
    )
    assert query(lake_dir, "SELECT count(*) FROM products") == [(4,)]
    assert landing_files(lake_dir, "products") == []
    # The analytics downstream still follow, by the automation.
    analytics = materializations(instance, analytics_key("daily_product_counts"))
    assert sorted(r.partition_key for r in analytics) == DAYS
    assert ingest not in {r.run_id for r in analytics}


def test_more_days_than_the_setting_allows_are_left_to_the_automation(
    lake_dir: Path, settings: Settings, instance: dg.DagsterInstance
) -> None:
    defs = build_definitions(dataclasses.replace(settings, ingest_build_days=1))
    drop_products(lake_dir)
    assert process_landing(defs, instance).failed_runs == []
    ingest = ingest_run_id(instance)
    records = materializations(instance, parquet_key("products"))
    assert sorted(r.partition_key for r in records) == DAYS
    assert ingest not in {r.run_id for r in records}
    assert query(lake_dir, "SELECT count(*) FROM products") == [(4,)]


def test_a_build_that_fails_leaves_the_staged_days_to_the_automation(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    drop_products(lake_dir)
    # A directory where the catalog file goes: the days' Parquet is written, publishing fails.
    (lake_dir / CATALOG_FILE).mkdir()
    result = defs.resolve_job_def(ingest_job_name("products")).execute_in_process(
        run_config=ingest_run_config("products", [f"{n}.json" for n in range(4)]),
        instance=instance,
    )
    assert result.success
    assert landing_files(lake_dir, "products") == []
    assert sorted(r.partition_key for r in materializations(instance, staged_key("products"))) == (
        DAYS
    )
    assert materializations(instance, table_key("products")) == []
    logged = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("building ['2024-03-02', '2024-03-03'] in the ingest run" in m for m in logged)
    # Once the catalog can be written, the days are built by the automation's runs.
    (lake_dir / CATALOG_FILE).rmdir()
    assert process_landing(defs, instance).failed_runs == []
    records = materializations(instance, table_key("products"))
    assert sorted(r.partition_key for r in records) == DAYS
    assert query(lake_dir, "SELECT count(*) FROM products") == [(4,)]


def test_a_table_another_run_is_writing_is_left_to_the_automation_without_waiting(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    drop_products(lake_dir)
    with LocalLakeStore(lake_dir=str(lake_dir)).table_lock("products", "a backfill"):
        result = defs.resolve_job_def(ingest_job_name("products")).execute_in_process(
            run_config=ingest_run_config("products", [f"{n}.json" for n in range(4)]),
            instance=instance,
        )
    assert result.success
    assert landing_files(lake_dir, "products") == []
    assert materializations(instance, parquet_key("products")) == []
    logged = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("products is being written by a backfill" in m for m in logged), logged
    assert process_landing(defs, instance).failed_runs == []
    assert query(lake_dir, "SELECT count(*) FROM products") == [(4,)]


def test_make_process_builds_every_day_its_ingest_run_staged(
    lake_dir: Path, settings: Settings, instance: dg.DagsterInstance
) -> None:
    """More days than the daemon's ingest run builds: `make process` has nobody waiting on a
    small drop, so its ingest run builds them all, and its ranged run is the analytics only."""
    assert settings.ingest_build_days is None  # unset: the daemon builds up to 7 days
    days = [f"2024-03-{d:02d}" for d in range(1, 11)]
    for n, day in enumerate(days):
        drop(lake_dir, "products", f"{n}.json", f'{{"id": {n}, "date": "{day}", "product": "A"}}')
    summary = process_landing(headless_definitions(settings), instance)
    assert summary.failed_runs == []
    assert summary.ingest_runs == 1
    ingest = ingest_run_id(instance)
    for key in (parquet_key("products"), table_key("products")):
        records = materializations(instance, key)
        assert sorted(r.partition_key for r in records) == days, key
        assert {r.run_id for r in records} == {ingest}, key
    analytics = materializations(instance, analytics_key("daily_product_counts"))
    assert sorted(r.partition_key for r in analytics) == days
    assert query(lake_dir, "SELECT count(*) FROM products") == [(10,)]


def test_the_build_days_setting_still_bounds_make_process(
    lake_dir: Path, settings: Settings, instance: dg.DagsterInstance
) -> None:
    defs = headless_definitions(dataclasses.replace(settings, ingest_build_days=1))
    drop_products(lake_dir)
    assert process_landing(defs, instance).failed_runs == []
    records = materializations(instance, parquet_key("products"))
    assert sorted(r.partition_key for r in records) == DAYS
    assert ingest_run_id(instance) not in {r.run_id for r in records}


def test_the_build_days_setting_is_unset_unless_given() -> None:
    lake = {"ANALYTICS_LAKE_DIR": "/tmp/lake"}
    assert Settings.from_env(lake).ingest_build_days is None
    assert Settings.from_env({**lake, "ANALYTICS_INGEST_BUILD_DAYS": "0"}).ingest_build_days == 0
    assert Settings.from_env({**lake, "ANALYTICS_INGEST_BUILD_DAYS": "30"}).ingest_build_days == 30
