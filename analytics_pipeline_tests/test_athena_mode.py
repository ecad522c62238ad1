"""ANALYTICS_ATHENA_COMPACTION through Dagster: the parquet asset of a dataset built by
Athena INSERTs over a range of days in one run, and its table asset checking the catalog.

S3 and Glue are moto; Athena is the real AthenaEngine over a botocore Stubber that plays
Athena's side (start, poll, results), and writes the files an INSERT would.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest
from botocore.stub import Stubber

from analytics_pipeline.datasets import dataset
from analytics_pipeline.definitions import RESOURCES_BY_DEPLOYMENT, build_definitions
from analytics_pipeline.defs.keys import parquet_key, table_key
from analytics_pipeline.lake.athena_compaction import drop_stale_staged_table
from analytics_pipeline.lake.athena_compaction_sql import staged_columns
from analytics_pipeline.lake.staging import stage_landing_files
from analytics_pipeline.resources.aws import athena_engine
from analytics_pipeline.resources.aws.athena_day_builder import AthenaDayBuilder
from analytics_pipeline.resources.aws.athena_engine import AthenaEngine
from analytics_pipeline.resources.aws.glue_catalog import GlueCatalog
from analytics_pipeline.resources.aws.s3_store import S3LakeStore
from analytics_pipeline.resources.day_builder import DayBuilder
from analytics_pipeline.settings import AwsSettings, Settings
from analytics_pipeline_tests.lake_helpers import aws_settings

LAKE = "lake-bucket"
DAYS = ["2024-03-01", "2024-03-02", "2024-03-03"]
ROWS = {"2024-03-01": 3, "2024-03-02": 0, "2024-03-03": 2}  # 03-02 has no staged rows


class AthenaPlayer:
    """One stubbed client for every AthenaEngine; each expected query in order."""

    def __init__(self) -> None:
        self.client = boto3.client("athena", region_name="us-east-1")
        self.stub = Stubber(self.client)
        self.stub.activate()
        self.statements: list[str] = []
        self.n = 0

    def expect(self, rows: list[list[str]] | None = None, columns: tuple[str, ...] = ()) -> None:
        self.n += 1
        query_id = f"q{self.n}"
        self.stub.add_response("start_query_execution", {"QueryExecutionId": query_id}, None)
        self.stub.add_response(
            "get_query_execution",
            {
                "QueryExecution": {
                    "QueryExecutionId": query_id,
                    "StatementType": "DML",
                    "Status": {"State": "SUCCEEDED"},
                    "Statistics": {"DataScannedInBytes": 1_000_000},
                }
            },
            {"QueryExecutionId": query_id},
        )
        info = [{"Name": c, "Type": "bigint" if c != "dt" else "varchar"} for c in columns]
        table = [list(columns), *rows] if rows is not None else []
        self.stub.add_response(
            "get_query_results",
            {
                "ResultSet": {
                    "Rows": [{"Data": [{"VarCharValue": v} for v in row]} for row in table],
                    "ResultSetMetadata": {"ColumnInfo": info},
                }
            },
            None,
        )


@pytest.fixture
def player(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[AthenaPlayer]:
    boto3.client("s3").create_bucket(Bucket=LAKE)
    played = AthenaPlayer()
    real_run_query = AthenaEngine.run_query

    def run_query(engine: AthenaEngine, athena_sql: str) -> Any:
        played.statements.append(athena_sql)
        if athena_sql.startswith("INSERT INTO"):
            # Athena writes extensionless files into the registered scratch partitions.
            scratch = athena_sql.split(".", 1)[1].split(" ", 1)[0].strip('"')
            glue = GlueCatalog(database="lake", lake_bucket=LAKE)
            s3 = boto3.client("s3")
            for dt, location in glue.partitions(scratch).items():
                if ROWS.get(dt):
                    key = location.removeprefix(f"s3://{LAKE}/") + f"20240601_000000_{dt}"
                    s3.put_object(Bucket=LAKE, Key=key, Body=b"PAR1")
        return real_run_query(engine, athena_sql)

    monkeypatch.setattr(AthenaEngine, "athena_client", lambda self: played.client)
    monkeypatch.setattr(AthenaEngine, "run_query", run_query)
    monkeypatch.setattr(athena_engine, "_sleep", lambda _: None)
    yield played


def _settings(tmp_path: Path, compaction: tuple[str, ...]) -> Settings:
    return aws_settings(
        tmp_path,
        AwsSettings(LAKE, LAKE, "s3://lake-bucket/athena/", "lake", "primary", None),
        partitions_start=date(2024, 1, 1),
        athena_compaction=compaction,
    )


def test_the_switch_names_existing_datasets_and_only_applies_on_aws(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ANALYTICS_ATHENA_COMPACTION names unknown datasets"):
        build_definitions(_settings(tmp_path, ("nope",)))
    every = RESOURCES_BY_DEPLOYMENT["aws"](_settings(tmp_path, ("*",)))["day_builder"]
    assert isinstance(every, AthenaDayBuilder) and every.builds_in_athena("products")
    local = Settings.from_env({"ANALYTICS_ATHENA_COMPACTION": "products"})
    assert local.athena_compaction == ("products",)
    assert type(RESOURCES_BY_DEPLOYMENT["local"](local)["day_builder"]) is DayBuilder


def test_the_deployment_picks_the_day_builder(tmp_path: Path) -> None:
    local = RESOURCES_BY_DEPLOYMENT["local"](Settings.from_env({"ANALYTICS_LAKE_DIR": "x"}))
    assert type(local["day_builder"]) is DayBuilder
    in_process = RESOURCES_BY_DEPLOYMENT["aws"](_settings(tmp_path, ()))
    assert type(in_process["day_builder"]) is DayBuilder
    by_athena = RESOURCES_BY_DEPLOYMENT["aws"](_settings(tmp_path, ("products",)))["day_builder"]
    assert isinstance(by_athena, AthenaDayBuilder)
    assert by_athena.builds_in_athena("products")
    assert not by_athena.builds_in_athena("iot_sensor_data")
    assert AthenaDayBuilder(datasets=["*"], partitions_start="2024-01-01").builds_in_athena("x")


def test_a_dataset_athena_is_not_given_is_built_in_process(
    tmp_path: Path, player: AthenaPlayer, instance: dg.DagsterInstance
) -> None:
    store = S3LakeStore(landing_bucket=LAKE, lake_bucket=LAKE)
    for n in range(3):
        boto3.client("s3").put_object(
            Bucket=LAKE,
            Key=f"landing/products/{n}.json",
            Body=f'{{"id": {n}, "date": "{DAYS[0]}", "product": "A"}}'.encode(),
        )
    stage_landing_files(
        store,
        dataset("products"),
        [f"{n}.json" for n in range(3)],
        start=date(2024, 1, 1),
        now=datetime(2024, 6, 1),
        max_file_bytes=1 << 20,
    )
    defs = build_definitions(_settings(tmp_path, ("iot_sensor_data",)))

    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[parquet_key("products")], partition_key=DAYS[0]
    )

    assert result.success
    assert player.statements == []  # no Athena query: pyarrow built the day here
    [materialization] = result.get_asset_materialization_events()
    metadata = materialization.step_materialization_data.materialization.metadata
    assert metadata["dagster/partition_row_count"].value == 3
    assert "built_by" not in metadata
    assert str(metadata["path"].value).startswith(f"parquet/products/dt={DAYS[0]}/")


def test_a_range_of_days_is_built_by_athena_in_one_run_and_checked(
    tmp_path: Path, player: AthenaPlayer, instance: dg.DagsterInstance
) -> None:
    defs = build_definitions(_settings(tmp_path, ("products",)))
    staged_counts = [[dt, str(n)] for dt, n in ROWS.items() if n]
    player.expect()  # CREATE EXTERNAL TABLE over staged/
    player.expect()  # INSERT INTO the scratch table
    player.expect(staged_counts, ("dt", "rows"))  # rows written per day
    player.expect(staged_counts, ("dt", "rows"))  # distinct staged records per day (check)

    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance,
        asset_selection=[parquet_key("products")],
        tags={
            "dagster/asset_partition_range_start": DAYS[0],
            "dagster/asset_partition_range_end": DAYS[-1],
        },
    )

    assert result.success
    player.stub.assert_no_pending_responses()
    kinds = [s.split(" ", 1)[0] for s in player.statements]
    assert kinds == ["CREATE", "INSERT", "SELECT", "SELECT"]
    metadata = {
        e.step_materialization_data.materialization.partition: {
            k: getattr(v, "value", v)
            for k, v in e.step_materialization_data.materialization.metadata.items()
        }
        for e in result.get_asset_materialization_events()
    }
    assert sorted(metadata) == DAYS
    for dt, rows in ROWS.items():
        assert metadata[dt]["dagster/partition_row_count"] == rows
        assert metadata[dt]["built_by"] == "athena"
        assert metadata[dt]["athena_queries"] == 3  # the run's own, on every day
    glue = GlueCatalog(database="lake", lake_bucket=LAKE)
    served = glue.partitions("products")
    assert sorted(served) == ["2024-03-01", "2024-03-03"]  # the empty day is not created
    for dt in served:
        assert served[dt] == metadata[dt]["location"]
    [check] = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "rows_reconcile_with_staged"  # type: ignore[union-attr]
    ]
    assert check.passed and check.metadata["days_checked"].value == 3

    # The table asset checks the catalog against the rows the parquet step recorded.
    player.expect([["2024-03-01", "3"]], ("dt", "rows"))  # count(*) by day
    player.expect([], ("dt", "keys"))  # no day has duplicate keys
    table_run = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[table_key("products")], partition_key=DAYS[0]
    )
    assert table_run.success
    checks = {
        e.event_specific_data.check_name: e.event_specific_data.passed  # type: ignore[union-attr]
        for e in table_run.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert checks == {"rows_match_parquet": True, "no_duplicate_keys": True}


def test_a_wrong_count_fails_the_check_not_silently(
    tmp_path: Path, player: AthenaPlayer, instance: dg.DagsterInstance
) -> None:
    defs = build_definitions(_settings(tmp_path, ("products",)))
    player.expect()
    player.expect()
    player.expect([["2024-03-01", "3"]], ("dt", "rows"))
    player.expect([["2024-03-01", "4"]], ("dt", "rows"))  # staged holds one record more
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[parquet_key("products")], partition_key=DAYS[0]
    )
    [check] = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "rows_reconcile_with_staged"  # type: ignore[union-attr]
    ]
    assert not check.passed
    assert check.metadata["staged_distinct_records"].value == 4
    [schema] = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "schema_matches_spec"  # type: ignore[union-attr]
    ]
    # Compared, not assumed: the columns Glue holds (Athena writes with them) = the spec's.
    assert schema.passed
    assert ["id", "bigint"] in schema.metadata["glue_columns"].value
    assert schema.metadata["glue_columns"].value == schema.metadata["spec"].value


def test_a_staged_table_from_an_older_spec_is_dropped_before_it_is_recreated(
    player: AthenaPlayer,
) -> None:
    spec = dataset("products")
    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": "lake"})
    current = [{"Name": n, "Type": t} for n, t in staged_columns(spec)]
    glue.create_table(
        DatabaseName="lake",
        TableInput={"Name": "staged_products", "StorageDescriptor": {"Columns": current[1:]}},
    )
    engine = AthenaEngine(database="lake", workgroup="primary", output_location="s3://x/")
    catalog = GlueCatalog(database="lake", lake_bucket=LAKE)
    player.expect()  # the DROP

    assert drop_stale_staged_table(engine, catalog, spec)
    assert player.statements == ["DROP TABLE IF EXISTS `lake`.`staged_products`"]

    glue.update_table(
        DatabaseName="lake",
        TableInput={"Name": "staged_products", "StorageDescriptor": {"Columns": current}},
    )
    assert not drop_stale_staged_table(engine, catalog, spec)  # up to date: no query
    player.stub.assert_no_pending_responses()
