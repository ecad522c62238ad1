"""The database source's staged layer: the extract stages, the parquet and table assets serve
from staged alone. A crash between the two is served by the automation; a backfill from the
UI rebuilds days from staged, with the database gone, and changes nothing served."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.cli.process import (
    ProcessSummary,
    _execute_asset_request,
    _requested_runs,
)
from analytics_pipeline.cli.samples.movie_rental import create_movie_rental
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.defs import source_tables
from analytics_pipeline.defs.keys import parquet_key, staged_key, table_key
from analytics_pipeline.defs.source_tables import extract_job_name
from analytics_pipeline.lake.source_days import staged_days
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.settings import Settings
from analytics_pipeline_tests.test_database_source import execute, lake_rows, source_rows

END = date(2026, 11, 30)
NEW_DAY = "2026-11-29"


@pytest.fixture
def url(settings: Settings) -> str:
    url = settings.movie_rental_url
    Path(sa.make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
    create_movie_rental(url, end_date=END, days=3, scale=0.2)
    return url


def extract(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(extract_job_name("movie_rental"))
    return job.execute_in_process(instance=instance, raise_on_error=False)


def automate(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: Any) -> set[str]:
    """Run what the automation requests until it requests nothing; the assets it ran."""
    ran: set[str] = set()
    for _ in range(6):
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = result.cursor
        runs = _requested_runs(defs, result)
        if not runs:
            return ran
        for day_range, keys in runs:
            summary = ProcessSummary()
            assert _execute_asset_request(defs, instance, day_range, keys, summary), summary
            ran |= {key.to_user_string() for key in keys}
    raise AssertionError("the automation kept requesting runs")


def test_a_crash_between_staged_and_served_is_served_by_the_automation(
    settings: Settings,
    url: str,
    store: LocalLakeStore,
    catalog: DuckDBCatalog,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defs = build_definitions(settings)
    assert extract(defs, instance).success
    baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
    execute(
        url,
        "INSERT INTO rental VALUES (9100, :day, 1, 1, NULL, 1, :now)",
        day=datetime(2026, 11, 29, 12),
        now=datetime(2026, 12, 5),
    )

    def crash(*args: Any) -> None:
        raise RuntimeError("killed after staging, before serving")

    monkeypatch.setattr(source_tables, "serve_days", crash)
    failed = extract(defs, instance)
    assert not failed.success
    monkeypatch.undo()
    by_failed_run = [
        key
        for key in (staged_key("rental"), table_key("rental"))
        for record in instance.fetch_materializations(key, limit=1).records
        if record.run_id == failed.run_id
    ]
    assert by_failed_run == [staged_key("rental")]
    assert NEW_DAY in staged_days(store, "movie_rental", "rental")
    assert 9100 not in [row[0] for row in lake_rows(catalog, "rental")]

    ran = automate(defs, instance, baseline)
    assert {"parquet/rental_parquet", "table/rental"} <= ran
    assert lake_rows(catalog, "rental") == source_rows(url, "rental")


def test_a_backfill_from_the_ui_rebuilds_days_from_staged_with_the_database_gone(
    settings: Settings,
    url: str,
    store: LocalLakeStore,
    catalog: DuckDBCatalog,
    instance: dg.DagsterInstance,
) -> None:
    defs = build_definitions(settings)
    assert extract(defs, instance).success
    served = catalog.partitions("rental")
    days = sorted(served)
    expected = {t: source_rows(url, t) for t in ("rental", "film")}
    # The Parquet of one day is lost; the database is gone.
    store.delete_prefix(f"parquet/rental/dt={days[0]}")
    Path(sa.make_url(url).database or "").unlink()

    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance,
        asset_selection=[parquet_key("rental"), table_key("rental")],
        tags={
            "dagster/asset_partition_range_start": days[0],
            "dagster/asset_partition_range_end": days[-1],
        },
    )
    assert result.success
    assert lake_rows(catalog, "rental") == expected["rental"]
    # Only the lost day got a new version: the others were already served as staged holds them.
    now = catalog.partitions("rental")
    assert [dt for dt in days if now[dt] != served[dt]] == [days[0]]

    snapshot = job.execute_in_process(
        instance=instance, asset_selection=[parquet_key("film"), table_key("film")]
    )
    assert snapshot.success
    assert lake_rows(catalog, "film") == expected["film"]
    versions = {
        e.asset_key: e.materialization.tags.get("dagster/data_version")
        for e in snapshot.get_asset_materialization_events()
    }
    assert versions[parquet_key("film")] == versions[table_key("film")] is not None
