"""The landing_reconciles check: archived records = staged + quarantined, and it can fail."""

from __future__ import annotations

import tempfile
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_pipeline.cli.process import process_landing
from analytics_pipeline.datasets import dataset
from analytics_pipeline.defs.keys import staged_key
from analytics_pipeline.lake import reconciliation
from analytics_pipeline.lake.parquet_encoding import parquet_bytes
from analytics_pipeline.lake.reconciliation import (
    _staged_records_by_file,
    reconcile_dataset,
    reconcile_files,
)
from analytics_pipeline.lake.staging import stage_landing_files, staged_schema
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline_tests.lake_helpers import drop, iot_reading, ndjson

IOT = dataset("iot_sensor_data")
NOW = datetime(2024, 6, 1, 12)


def _reading(minute: int) -> dict[str, str]:
    return iot_reading(
        deviceid="1",
        datetime=f"2024-03-02 10:{minute:02d}:00",
        temperature="20",
        winddirection="90",
        windintensity="5",
    )


def _lake_with_one_mixed_file(lake_dir: Path, defs: dg.Definitions, instance) -> None:
    body = ndjson([_reading(0), _reading(1)]) + "not json\n\n" + ndjson([_reading(2)])
    drop(lake_dir, "iot_sensor_data", "gw/a.json", body)
    assert not process_landing(defs, instance).failed_runs


def test_each_ingest_run_reports_its_batch_reconciled(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    _lake_with_one_mixed_file(lake_dir, defs, instance)
    check = dg.AssetCheckKey(staged_key("iot_sensor_data"), "landing_reconciles")
    [record] = instance.event_log_storage.get_asset_check_execution_history(check, limit=1)
    evaluation = record.event.dagster_event.event_specific_data
    assert evaluation.passed
    assert evaluation.metadata["landing_records"].value == 4
    assert evaluation.metadata["staged_records"].value == 3
    assert evaluation.metadata["quarantined_records"].value == 1


def test_whole_dataset_check_passes_on_a_processed_lake(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance, store: LocalLakeStore
) -> None:
    _lake_with_one_mixed_file(lake_dir, defs, instance)
    result = reconcile_dataset(store, IOT, start=date(2020, 1, 1), now=NOW, max_file_bytes=1 << 20)
    assert result.passed, result.mismatches
    assert (result.files, result.landing_records) == (1, 4)


def test_whole_dataset_check_fails_naming_the_file_when_staged_data_is_lost(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance, store: LocalLakeStore
) -> None:
    _lake_with_one_mixed_file(lake_dir, defs, instance)
    for staged in (lake_dir / "staged" / "iot_sensor_data").rglob("*.parquet"):
        staged.unlink()
    result = reconcile_dataset(store, IOT, start=date(2020, 1, 1), now=NOW, max_file_bytes=1 << 20)
    assert not result.passed
    assert result.mismatches == [
        "iot_sensor_data/gw/a.json: 4 records, 1 placed (0 staged, 1 quarantined)"
    ]


def test_the_check_runs_from_dagster(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    _lake_with_one_mixed_file(lake_dir, defs, instance)
    check = dg.AssetCheckKey(staged_key("iot_sensor_data"), "landing_reconciles")
    job = dg.define_asset_job("reconcile", selection=dg.AssetSelection.checks(check))
    with_job = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    result = with_job.resolve_job_def("reconcile").execute_in_process(instance=instance)
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed
    assert evaluation.metadata["scope"].value == "whole dataset"


source_line = st.tuples(
    st.sampled_from(["a.ndjson", "b.ndjson", "b.ndjson~1"]),
    st.sampled_from(["v1", "v2"]),
    st.integers(min_value=1, max_value=40),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=st.lists(st.lists(source_line, max_size=30), max_size=4),
    bitmap_min_rows=st.sampled_from([0, 3, 64]),
)
def test_staged_records_are_counted_once_per_source_line(
    files: list[list[tuple[str, str, int]]], bitmap_min_rows: int
):
    """Re-staged lines (in another file, or twice in one) count once; sources never mix;
    a source kept as a bitmap in one file and as codes in another counts each line once."""
    schema = staged_schema(IOT)
    with tempfile.TemporaryDirectory() as lake:
        store = LocalLakeStore(lake_dir=lake)
        paths = []
        for i, rows in enumerate(files):
            table = pa.table(
                {
                    "_source_key": [r[0] for r in rows],
                    "_source_version": [r[1] for r in rows],
                    "_source_line": pa.array([r[2] for r in rows], pa.int32()),
                }
            )
            full = pa.table(
                {
                    n: table.column(n)
                    if n in table.column_names
                    else pa.nulls(len(rows), schema.field(n).type)
                    for n in schema.names
                }
            )
            paths.append(f"staged/iot_sensor_data/dt=2024-05-01/b{i}-0000.parquet")
            store.write_bytes(paths[-1], parquet_bytes(full))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(reconciliation, "BITMAP_MIN_ROWS", bitmap_min_rows)
            counted = _staged_records_by_file(store, paths)
    expected = Counter((key, version) for key, version, _ in {r for rows in files for r in rows})
    assert counted == expected


def test_a_batch_counts_the_quarantine_files_its_run_wrote_and_only_those(
    lake_dir: Path, store: LocalLakeStore
) -> None:
    body = ndjson([_reading(0)]) + "not json\n"
    drop(lake_dir, "iot_sensor_data", "a.json", body)
    start = date(2020, 1, 1)
    report = stage_landing_files(
        store, IOT, ["a.json"], start=start, now=NOW, max_file_bytes=1 << 20
    )
    expected = {(f.key, f.version or ""): f.records for f in report.files}

    listed = reconcile_files(store, IOT, expected, report.staged_paths, report.quarantine_paths)
    looked_for = reconcile_files(store, IOT, expected, report.staged_paths)
    unlisted = reconcile_files(store, IOT, expected, report.staged_paths, [])

    assert listed.passed and looked_for.passed
    assert (listed.quarantined_records, looked_for.quarantined_records) == (1, 1)
    assert unlisted.mismatches == [
        "iot_sensor_data/a.json: 2 records, 1 placed (1 staged, 0 quarantined)"
    ]
