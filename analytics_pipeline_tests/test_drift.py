"""Schema drift through the pipeline: a new field warns and is recorded, a changed type is
quarantined, and the table keeps its columns and rows either way."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from analytics_pipeline.cli.process import process_landing
from analytics_pipeline.defs.keys import staged_key
from analytics_pipeline_tests.lake_helpers import drop, quarantine_lines, query

DAY = "2024-03-01"


def _check_evaluations(instance: dg.DagsterInstance, name: str) -> list:
    key = dg.AssetCheckKey(staged_key("products"), name)
    return instance.event_log_storage.get_asset_check_execution_history(key, limit=10)


def test_an_unknown_field_warns_and_leaves_the_table_whole(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    drop(lake_dir, "products", "1.json", json.dumps({"id": 1, "date": DAY, "product": "A"}))
    drifted = {"id": 2, "date": DAY, "product": "B", "colour": "red"}
    drop(lake_dir, "products", "2.json", json.dumps(drifted))
    changed_type = {"id": "three", "date": DAY, "product": "A"}
    drop(lake_dir, "products", "3.json", json.dumps(changed_type))

    assert process_landing(defs, instance).failed_runs == []

    assert query(lake_dir, "SELECT id, product FROM products ORDER BY id") == [(1, "A"), (2, "B")]
    columns = [row[0] for row in query(lake_dir, "DESCRIBE products")]
    assert "colour" not in columns
    [rejected] = quarantine_lines(lake_dir, "products")
    assert "id" in rejected["reason"]

    [record] = _check_evaluations(instance, "no_unknown_fields")
    evaluation = record.event.dagster_event.event_specific_data  # type: ignore[union-attr]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["unknown_fields"].value == {"colour": 1}

    [staged] = instance.fetch_materializations(staged_key("products"), limit=1).records
    assert staged.asset_materialization is not None
    assert staged.asset_materialization.metadata["unknown_fields"].value == {"colour": 1}

    # Executed on demand, the check sums the batches' reports.
    wanted = dg.AssetCheckKey(staged_key("products"), "no_unknown_fields")
    [check] = [c for c in defs.asset_checks or [] if wanted in c.check_keys]
    result = dg.materialize(
        [check], instance=instance, selection=dg.AssetSelection.checks(check), raise_on_error=False
    )
    [on_demand] = result.get_asset_check_evaluations()
    assert not on_demand.passed
    assert on_demand.metadata["unknown_fields"].value == {"colour": 1}


def test_a_batch_without_unknown_fields_passes_the_check(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    drop(lake_dir, "products", "1.json", json.dumps({"id": 1, "date": DAY, "product": "A"}))
    assert process_landing(defs, instance).failed_runs == []
    [record] = _check_evaluations(instance, "no_unknown_fields")
    evaluation = record.event.dagster_event.event_specific_data  # type: ignore[union-attr]
    assert evaluation.passed
