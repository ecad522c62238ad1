"""terraform/tables.json, which Terraform declares the Glue tables from, is the specs' own."""

from __future__ import annotations

import json
import subprocess
import sys

from analytics_pipeline.cli.glue_tables import (
    REGENERATE,
    TABLES_JSON,
    all_tables,
    render,
    tables_document,
)
from analytics_pipeline.datasets import DATASETS
from analytics_pipeline.resources.catalog import TableDef
from analytics_pipeline.settings import PROJECT_ROOT


def test_tables_json_is_what_the_specs_and_sql_generate_now() -> None:
    assert TABLES_JSON.read_text() == render(), (
        f"terraform/tables.json is stale: the dataset specs or analytics SQL changed. "
        f"Regenerate it with `{REGENERATE}` and commit it."
    )


def test_every_dataset_table_has_its_spec_columns_in_order() -> None:
    tables = tables_document()["tables"]
    assert isinstance(tables, dict)
    for spec in DATASETS:
        for table in spec.tables:
            assert tables[table.name]["columns"] == [
                {"name": f.name, "type": f.athena_type} for f in spec.table_fields(table)
            ]
            assert tables[table.name]["description"] == table.description


def test_analytics_columns_are_typed_as_the_analytics_assets_store_them() -> None:
    columns = {t.name: t.columns for t in all_tables()}
    assert columns["daily_product_counts"] == (("product", "string"), ("product_count", "bigint"))
    # sum() and count_if() are HUGEINT in DuckDB, bigint in Athena; avg() is double.
    assert columns["daily_user_events"] == (
        ("event", "string"),
        ("events", "bigint"),
        ("unique_users", "bigint"),
        ("test_user_events", "bigint"),
    )
    assert dict(columns["iot_daily_device_stats"])["avg_temperature"] == "double"
    assert dict(columns["iot_daily_device_stats"])["total_rainheight"] == "bigint"


def test_a_changed_table_renders_a_different_document() -> None:
    changed = [TableDef("products", (("id", "bigint"), ("extra", "string")), "Products.")]
    assert render(changed) != TABLES_JSON.read_text()
    assert json.loads(render(changed))["tables"] == {
        "products": {
            "description": "Products.",
            "columns": [{"name": "id", "type": "bigint"}, {"name": "extra", "type": "string"}],
        }
    }


def test_command_line_prints_the_document() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "analytics_pipeline.cli.glue_tables"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=True,
    )
    assert result.stdout == render()
