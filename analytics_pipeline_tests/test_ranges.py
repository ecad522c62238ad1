"""Runs over ranges of days: one run builds many days, each keeping its own metadata."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics_pipeline.cli.process import process_landing
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.defs.keys import parquet_key, table_key
from analytics_pipeline.defs.ranges import map_days
from analytics_pipeline.defs.staleness import day_ranges
from analytics_pipeline.resources.local.engine import DuckDBEngine
from analytics_pipeline.settings import Settings
from analytics_pipeline_tests.lake_helpers import drop, query

DAYS = ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-05"]


def _drop_products(lake_dir: Path) -> None:
    # Day i holds i+1 products, so each day's row count is its own.
    for i, day in enumerate(DAYS):
        for n in range(i + 1):
            record = {"id": 100 * i + n, "date": day, "product": "A"}
            drop(lake_dir, "products", f"{record['id']}.json", json.dumps(record))


def _materializations(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, dict]:
    records = instance.fetch_materializations(key, limit=100).records
    out = {}
    for record in records:
        event = record.asset_materialization
        assert event is not None and event.partition is not None
        out.setdefault(event.partition, {k: v.value for k, v in event.metadata.items()})
    return out


def test_contiguous_days_build_in_one_run_each_with_its_own_metadata(
    lake_dir: Path, settings: Settings, instance: dg.DagsterInstance
) -> None:
    # The automation's ranged runs: ingest runs that leave their days to it.
    defs = build_definitions(dataclasses.replace(settings, ingest_build_days=0))
    _drop_products(lake_dir)
    summary = process_landing(defs, instance)
    assert summary.failed_runs == []
    # 03-01..03-03 are one range, 03-05 another: two automation runs, not four.
    assert summary.automation_runs == 2
    parquet = _materializations(instance, parquet_key("products"))
    assert sorted(parquet) == DAYS
    for i, day in enumerate(DAYS):
        assert parquet[day]["dagster/partition_row_count"] == i + 1
        assert f"dt={day}/" in parquet[day]["path"]
    ranged = parquet["2024-03-02"]
    assert (ranged["run_days"], ranged["run_range"], ranged["run_rows"]) == (
        3,
        "2024-03-01..2024-03-03",
        6,
    )
    assert "run_days" not in parquet["2024-03-05"]
    table = _materializations(instance, table_key("products"))
    assert [table[d]["catalog_rows"] for d in DAYS] == [1, 2, 3, 4]
    assert query(lake_dir, "SELECT dt, count(*) FROM products GROUP BY dt ORDER BY dt") == [
        (d, i + 1) for i, d in enumerate(DAYS)
    ]


def _check_table_over_the_first_three_days(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> dict[str, Any]:
    """The products table rebuilt for 2024-03-01..03 in one run: its check evaluations."""
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance,
        asset_selection=[table_key("products")],
        tags={
            "dagster/asset_partition_range_start": "2024-03-01",
            "dagster/asset_partition_range_end": "2024-03-03",
        },
    )
    return {
        e.event_specific_data.check_name: e.event_specific_data  # type: ignore[union-attr]
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def test_a_check_over_a_range_names_the_days_it_failed_on(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    _drop_products(lake_dir)
    assert process_landing(defs, instance).failed_runs == []
    # Duplicate one day's rows behind the pipeline's back; the other days stay clean.
    [path] = (lake_dir / "parquet" / "products" / "dt=2024-03-02").glob("*/part-*.parquet")
    data = pq.read_table(path)
    pq.write_table(pa.concat_tables([data, data]), path)
    evaluations = _check_table_over_the_first_three_days(defs, instance)
    duplicates = evaluations["no_duplicate_keys"]
    assert not duplicates.passed
    assert duplicates.severity == dg.AssetCheckSeverity.WARN
    assert duplicates.metadata["days_checked"].value == 3
    assert duplicates.metadata["failed_days"].value == ["2024-03-02"]
    assert duplicates.metadata["by_day"].value["2024-03-02"] == {"duplicated_keys": 2}
    assert evaluations["rows_match_parquet"].passed  # served = file, both doubled


def test_duplicate_keys_are_grouped_by_a_query_only_for_days_whose_footer_lacks_the_count(
    lake_dir: Path,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _drop_products(lake_dir)
    assert process_landing(defs, instance).failed_runs == []
    # One day rewritten without our footer metadata, its rows doubled.
    [path] = (lake_dir / "parquet" / "products" / "dt=2024-03-03").glob("*/part-*.parquet")
    data = pq.read_table(path)
    pq.write_table(pa.concat_tables([data, data]).replace_schema_metadata(None), path)
    sent: list[str] = []
    run_query = DuckDBEngine.run_query

    def recorded(self: DuckDBEngine, sql: str) -> Any:
        sent.append(sql)
        return run_query(self, sql)

    monkeypatch.setattr(DuckDBEngine, "run_query", recorded)
    duplicates = _check_table_over_the_first_three_days(defs, instance)["no_duplicate_keys"]
    grouped = [sql for sql in sent if "HAVING" in sql]
    assert len(grouped) == 1 and "'2024-03-03'" in grouped[0] and "'2024-03-01'" not in grouped[0]
    assert duplicates.metadata["failed_days"].value == ["2024-03-03"]


@given(
    st.sets(st.integers(min_value=0, max_value=400), max_size=120),
    st.integers(min_value=1, max_value=40),
)
def test_day_ranges_cover_each_day_once_in_consecutive_runs(offsets: set[int], size: int) -> None:
    start = date(2024, 1, 1)
    days = sorted((start + timedelta(n)).isoformat() for n in offsets)
    ranges = day_ranges(days, size)
    covered = []
    for first, last in ranges:
        a, b = date.fromisoformat(first), date.fromisoformat(last)
        assert 1 <= (b - a).days + 1 <= size
        covered += [(a + timedelta(n)).isoformat() for n in range((b - a).days + 1)]
    assert covered == days  # every day once, in order, and nothing in between
    # Maximal: two ranges only touch when the first is full.
    for (_, last), (first, _) in zip(ranges, ranges[1:], strict=False):
        gap = (date.fromisoformat(first) - date.fromisoformat(last)).days
        assert gap > 1 or size in {
            (date.fromisoformat(last) - date.fromisoformat(f)).days + 1
            for f, lst in ranges
            if lst == last
        }


def test_map_days_keeps_day_order_and_builds_alone_in_the_calling_thread() -> None:
    days = [f"2024-03-0{i}" for i in range(1, 8)]

    def build(dt: str) -> tuple[str, str]:
        return dt, threading.current_thread().name

    alone = map_days(build, days)
    two = map_days(build, days, workers=2)

    assert list(alone) == list(two) == days
    assert {name for _, name in alone.values()} == {threading.current_thread().name}
    assert all(name.startswith("build-day") for _, name in two.values())
