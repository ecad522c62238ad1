"""Faults through real Dagster runs: a killed run, a failed Athena query, a permanent S3 error.

test_exactly_once.py kills staging and the Parquet write at the function level; here the
whole run process dies (SIGKILL, as an OOM kill or a lost node would) between the steps of
a real Dagster run of a day's Parquet and table assets, and AWS errors reach a run through
the real resources (moto, with the faults injected through botocore's event hooks, below
our code, never by replacing it).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import botocore.handlers
import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.awsrequest import AWSResponse

from analytics_pipeline.cli.process import QUIET_LOGGING, headless_definitions, process_landing
from analytics_pipeline.defs.keys import analytics_key, parquet_key, table_key
from analytics_pipeline.lake.versioned_days import versions
from analytics_pipeline.resources.aws.s3_store import S3LakeStore
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.settings import Settings
from analytics_pipeline_tests.lake_helpers import (
    DATABASE,
    LAKE,
    LANDING,
    drop,
    landing_files,
    provisioned_aws_settings,
    query,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAY = "2024-05-01"
CHILD_TIMEOUT = 240


def product(id_: int, name: str, day: str = DAY) -> str:
    return f'{{"id": {id_}, "date": "{day}", "product": "{name}"}}'


def drop_products(lake_dir: Path, rows: dict[int, str]) -> None:
    for id_, name in rows.items():
        drop(lake_dir, "products", f"{id_}.json", product(id_, name))


def served_products(lake_dir: Path) -> list[tuple[Any, ...]]:
    """The day as a user's own DuckDB session reads it from the catalog."""
    return query(lake_dir, f"SELECT id, product FROM products WHERE dt = '{DAY}' ORDER BY id")


def error_chain(error: Any) -> str:
    """A step failure's error and every cause under it, as one text."""
    parts = []
    while error is not None:
        parts.append(f"{error.cls_name}: {error.message}")
        error = error.cause
    return "\n".join(parts)


def step_failures(events: Sequence[dg.DagsterEvent]) -> list[str]:
    return [error_chain(e.step_failure_data.error) for e in events if e.is_step_failure]


def ingest_what_the_sensor_requests(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """One tick of the products landing sensor, and the ingest run it requests, executed."""
    sensor = defs.resolve_sensor_def("products_landing_sensor")
    context = dg.build_sensor_context(instance=instance, resources=dict(defs.resources or {}))
    [request] = sensor.evaluate_tick(context).run_requests or []
    return defs.resolve_job_def("ingest_products").execute_in_process(
        run_config={**request.run_config, **QUIET_LOGGING},
        instance=instance,
        tags=request.tags,
        raise_on_error=False,
    )


def materialize_day(
    defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[dg.AssetKey]
) -> dg.ExecuteInProcessResult:
    """The day of these assets, in one run, as a backfill from the UI would."""
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        asset_selection=keys,
        partition_key=DAY,
        instance=instance,
        run_config=QUIET_LOGGING,
        raise_on_error=False,
    )


def materialization_metadata(
    result: dg.ExecuteInProcessResult,
) -> dict[dg.AssetKey, dict[str, Any]]:
    return {
        event.asset_key: {
            k: getattr(v, "value", v)
            for k, v in event.step_materialization_data.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    }


# 1. the run process killed between the Parquet step and the table step


@dataclass(frozen=True)
class LocalLake:
    dir: Path
    dagster_home: Path
    store: LocalLakeStore
    catalog: DuckDBCatalog
    defs: dg.Definitions


@pytest.fixture
def local_lake(
    lake_dir: Path, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> LocalLake:
    """A lake and an on-disk DAGSTER_HOME, shared by this process and a child run. Ingest
    runs leave their days to the asset runs these tests kill (ingest_build_days=0)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("ANALYTICS_LAKE_DIR", str(lake_dir))
    monkeypatch.setenv("ANALYTICS_INGEST_BUILD_DAYS", "0")
    settings = dataclasses.replace(settings, ingest_build_days=0)
    return LocalLake(
        lake_dir,
        home,
        LocalLakeStore(lake_dir=str(lake_dir)),
        DuckDBCatalog(lake_dir=str(lake_dir)),
        headless_definitions(settings),
    )


# A run of the day's Parquet and table assets (one run, as the automation requests them), on
# the real definitions and DAGSTER_HOME, with one of our functions replaced by a SIGKILL of
# the process itself: the run dies exactly there.
_KILLED_RUN = """
import os, signal, sys
import dagster as dg
import analytics_pipeline.lake.versioned_days as partitions
from analytics_pipeline.defs.keys import parquet_key, table_key
from analytics_pipeline.cli.process import headless_definitions
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline.settings import Settings

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

kill_point, table, day = sys.argv[1:]
if kill_point == "before-registration":
    # The Parquet step has finished; the table step dies before the catalog changes.
    DuckDBCatalog.register_partitions = die
elif kill_point == "before-old-versions-deleted":
    # The catalog points at the new version; the old one is still on disk.
    partitions.delete_older_versions = die
else:
    sys.exit(f"unknown kill point {kill_point}")
defs = headless_definitions(Settings.from_env())
with dg.DagsterInstance.get() as instance:
    defs.resolve_implicit_global_asset_job_def().execute_in_process(
        asset_selection=[parquet_key(table), table_key(table)],
        partition_key=day,
        instance=instance,
    )
sys.exit("the run finished: the kill point was never reached")
"""


def run_killed(kill_point: str) -> tuple[int, str]:
    """Run the child (it inherits ANALYTICS_LAKE_DIR and DAGSTER_HOME); its exit code and
    stderr. The child is killed by its PID if it outlives the timeout."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_KILLED_RUN), kill_point, "products", DAY],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _, stderr = process.communicate(timeout=CHILD_TIMEOUT)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode, stderr.decode(errors="replace")[-3000:]


def first_publish(lake: LocalLake) -> str:
    """Products 1 and 2 for the day, ingested and published; the day's one version."""
    drop_products(lake.dir, {1: "A", 2: "B"})
    with dg.DagsterInstance.get() as instance:
        assert ingest_what_the_sensor_requests(lake.defs, instance).success
        assert materialize_day(
            lake.defs, instance, [parquet_key("products"), table_key("products")]
        ).success
    assert served_products(lake.dir) == [(1, "A"), (2, "B")]
    [old] = versions(lake.store, "products", DAY)
    return old


def stage_new_files(lake: LocalLake) -> None:
    with dg.DagsterInstance.get() as instance:
        assert ingest_what_the_sensor_requests(lake.defs, instance).success
    assert landing_files(lake.dir, "products") == []


def test_a_run_killed_after_parquet_before_registration_keeps_the_old_day_served(
    local_lake: LocalLake,
):
    lake = local_lake
    old = first_publish(lake)
    drop_products(lake.dir, {3: "C"})
    stage_new_files(lake)

    code, stderr = run_killed("before-registration")

    assert code == -signal.SIGKILL, stderr
    # The new day's Parquet is written, but readers still get the old day, whole.
    assert versions(lake.store, "products", DAY)[0] == old
    [_, orphan] = versions(lake.store, "products", DAY)
    assert lake.catalog.partition_location("products", DAY) == lake.store.location(old)
    assert served_products(lake.dir) == [(1, "A"), (2, "B")]
    # Product 3 is staged (its landing file archived): not lost, only not yet served.
    assert (lake.dir / "archive" / "products" / "3.json").is_file()

    with dg.DagsterInstance.get() as instance:
        parquet_event = instance.get_latest_materialization_event(parquet_key("products"))
        table_event = instance.get_latest_materialization_event(table_key("products"))
        assert parquet_event is not None and table_event is not None
        killed_run = instance.get_run_by_id(parquet_event.run_id)
        assert killed_run is not None and not killed_run.is_finished  # it died mid-run
        assert table_event.run_id != parquet_event.run_id  # the table was not registered

        result = materialize_day(
            lake.defs, instance, [parquet_key("products"), table_key("products")]
        )
        assert result.success
        metadata = materialization_metadata(result)

    # The orphan already holds exactly the day: it is reused, published, and the old one goes.
    assert metadata[parquet_key("products")]["unchanged"] is True
    assert metadata[parquet_key("products")]["path"] == orphan
    assert metadata[table_key("products")]["versions_removed"] == 1
    assert versions(lake.store, "products", DAY) == [orphan]
    assert lake.catalog.partition_location("products", DAY) == lake.store.location(orphan)
    assert served_products(lake.dir) == [(1, "A"), (2, "B"), (3, "C")]
    assert query(lake.dir, "SELECT count(*), count(DISTINCT id) FROM products") == [(3, 3)]


def test_make_process_after_a_killed_run_brings_every_staged_record_to_the_table(
    local_lake: LocalLake,
):
    lake = local_lake
    first_publish(lake)
    drop_products(lake.dir, {3: "C"})
    stage_new_files(lake)
    code, stderr = run_killed("before-registration")
    assert code == -signal.SIGKILL, stderr

    # The operator runs `make process` again, and more data for the day has arrived.
    drop_products(lake.dir, {4: "A"})
    with dg.DagsterInstance.get() as instance:
        summary = process_landing(lake.defs, instance)
        # The killed run, left STARTED, is found dead and marked failed, with the reason.
        [abandoned] = summary.abandoned_runs
        run = instance.get_run_by_id(abandoned)
        assert run is not None and run.status == dg.DagsterRunStatus.FAILURE

    assert summary.failed_runs == []
    assert summary.ingest_runs == 1 and landing_files(lake.dir, "products") == []
    assert served_products(lake.dir) == [(1, "A"), (2, "B"), (3, "C"), (4, "A")]
    assert len(versions(lake.store, "products", DAY)) == 1


def test_a_run_killed_after_repointing_before_clean_up_serves_the_new_day_once(
    local_lake: LocalLake,
):
    lake = local_lake
    old = first_publish(lake)
    drop_products(lake.dir, {3: "C"})
    stage_new_files(lake)

    code, stderr = run_killed("before-old-versions-deleted")

    assert code == -signal.SIGKILL, stderr
    # Two versions of the day on disk, the catalog on the new one: read once, not twice.
    [first, new] = versions(lake.store, "products", DAY)
    assert first == old
    assert lake.catalog.partition_location("products", DAY) == lake.store.location(new)
    assert served_products(lake.dir) == [(1, "A"), (2, "B"), (3, "C")]
    assert query(lake.dir, "SELECT count(*) FROM products") == [(3,)]

    with dg.DagsterInstance.get() as instance:
        result = materialize_day(lake.defs, instance, [table_key("products")])
        assert result.success
        metadata = materialization_metadata(result)

    assert metadata[table_key("products")]["versions_removed"] == 1
    assert metadata[table_key("products")]["previous_location"] == lake.store.location(new)
    assert versions(lake.store, "products", DAY) == [new]
    assert not (lake.dir / old).parent.exists()
    assert served_products(lake.dir) == [(1, "A"), (2, "B"), (3, "C")]


# AWS: the deployment's resources against moto, in this process


@pytest.fixture
def aws_settings(aws: None, tmp_path: Path) -> Settings:
    """Ingest runs leave their days to the asset runs these tests fault."""
    return dataclasses.replace(provisioned_aws_settings(tmp_path), ingest_build_days=0)


def put_landing(key: str, body: str) -> None:
    boto3.client("s3").put_object(Bucket=LANDING, Key=f"landing/products/{key}", Body=body)


def bucket_keys(bucket: str, prefix: str) -> list[str]:
    pages = (
        boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    )
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def glue_location(table: str, day: str = DAY) -> str | None:
    glue = boto3.client("glue")
    try:
        partition = glue.get_partition(
            DatabaseName=DATABASE, TableName=table, PartitionValues=[day]
        )
    except glue.exceptions.EntityNotFoundException:
        return None
    return partition["Partition"]["StorageDescriptor"]["Location"]


def rows_at(location: str) -> list[tuple[Any, ...]]:
    """What Athena reads for a Glue partition: every object under its location."""
    prefix = location.removeprefix(f"s3://{LAKE}/")
    s3 = boto3.client("s3")
    tables = [
        pq.read_table(pa.BufferReader(s3.get_object(Bucket=LAKE, Key=key)["Body"].read()))
        for key in bucket_keys(LAKE, prefix)
    ]
    return sorted((r["id"], r["product"]) for t in tables for r in t.to_pylist())


# 2. an Athena query that fails

ATHENA_REASON = (
    "HIVE_BAD_DATA: Error reading file s3://acme-lake/parquet/products/x: "
    "Malformed Parquet file (injected by the test)"
)


@pytest.fixture
def failing_athena(aws: None, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every Athena query moto accepts is reported FAILED with ATHENA_REASON (moto itself says
    SUCCEEDED to everything). Returns the ids of the queries started."""
    session = boto3.session.Session()
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)  # what boto3.client() uses
    started: list[str] = []

    def record_start(parsed: dict[str, Any], **_: Any) -> None:
        started.append(parsed["QueryExecutionId"])

    def fail(parsed: dict[str, Any], **_: Any) -> None:
        parsed["QueryExecution"]["Status"] = {
            "State": "FAILED",
            "StateChangeReason": ATHENA_REASON,
        }

    session.events.register("after-call.athena.StartQueryExecution", record_start)
    session.events.register("after-call.athena.GetQueryExecution", fail)
    return started


@pytest.mark.parametrize(
    "failing_key",
    [table_key("products"), analytics_key("daily_product_counts")],
    ids=lambda key: key.to_user_string(),
)
def test_a_failed_athena_query_fails_the_run_with_athenas_reason_and_no_materialization(
    aws_settings: Settings,
    failing_athena: list[str],
    instance: dg.DagsterInstance,
    failing_key: dg.AssetKey,
):
    defs = headless_definitions(aws_settings)
    put_landing("1.json", product(1, "A"))
    put_landing("2.json", product(2, "B"))
    assert ingest_what_the_sensor_requests(defs, instance).success
    assert materialize_day(defs, instance, [parquet_key("products")]).success
    assert failing_athena == []

    result = materialize_day(defs, instance, [failing_key])

    assert not result.success
    [query_id] = failing_athena
    [failure] = step_failures(result.all_events)
    assert f"Athena query {query_id} FAILED: {ATHENA_REASON}" in failure
    assert instance.get_latest_materialization_event(failing_key) is None
    assert DAY not in instance.get_materialized_partitions(failing_key)
    # Nothing lost: the day's Parquet is still there.
    [parquet_object] = bucket_keys(LAKE, f"parquet/products/dt={DAY}/")
    if failing_key == table_key("products"):
        # The table asset repoints Glue before its row-count query: the day is served from
        # the file that exists, though Dagster records no materialization of it.
        assert glue_location("products") == f"s3://{LAKE}/{parquet_object.rsplit('/', 1)[0]}/"
    else:
        # The analytics query runs first: nothing was written or registered for it.
        assert bucket_keys(LAKE, "parquet/daily_product_counts/") == []
        glue_tables = boto3.client("glue").get_tables(DatabaseName=DATABASE)["TableList"]
        assert "daily_product_counts" not in [t["Name"] for t in glue_tables]


# 3. a permanent S3 error in an ingest run


@dataclass
class S3Fault:
    """Answers one S3 operation on matching keys with 403 AccessDenied, instead of sending it.

    A `before-call` answer, as botocore's Stubber gives: the request never reaches moto, so
    nothing happens server-side (a `before-send` answer would still let moto act on it).
    """

    operation: str
    key_fragment: str
    active: bool = False
    hits: int = 0

    def __call__(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict] | None:
        target = unquote(f"{params.get('url', '')} {params.get('url_path', '')}")
        if not (self.active and self.key_fragment in target):
            return None
        self.hits += 1
        http = AWSResponse("https://s3.amazonaws.com", 403, {}, None)
        parsed = {
            "Error": {"Code": "AccessDenied", "Message": "injected AccessDenied"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }
        return http, parsed


@pytest.fixture
def s3_fault(aws: None, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], S3Fault]:
    """Install a fault in every botocore session created from now on (the store's too)."""

    def install(operation: str, key_fragment: str) -> S3Fault:
        fault = S3Fault(operation, key_fragment)
        handlers = [(f"before-call.s3.{operation}", fault), *botocore.handlers.BUILTIN_HANDLERS]
        monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", handlers)
        return fault

    return install


@pytest.mark.parametrize(
    ("operation", "key_fragment", "named"),
    [
        # reading one landing object
        ("GetObject", "landing/products/2.json", f"s3://{LANDING}/landing/products/2.json"),
        # writing the staged day
        ("PutObject", "staged/products/", f"s3://{LAKE}/staged/products/dt={DAY}/"),
        # archiving one landing object, after the batch is staged
        ("CopyObject", "archive/products/2.json", f"s3://{LANDING}/landing/products/2.json"),
    ],
    ids=["read-landing", "write-staged", "archive"],
)
def test_a_permanent_s3_error_fails_the_ingest_run_naming_the_key_and_loses_nothing(
    aws_settings: Settings,
    s3_fault: Callable[[str, str], S3Fault],
    instance: dg.DagsterInstance,
    operation: str,
    key_fragment: str,
    named: str,
):
    fault = s3_fault(operation, key_fragment)
    defs = headless_definitions(aws_settings)
    for id_, name in ((1, "A"), (2, "B"), (3, "C")):
        put_landing(f"{id_}.json", product(id_, name))
    fault.active = True

    result = ingest_what_the_sensor_requests(defs, instance)

    assert not result.success
    assert fault.hits >= 1
    [failure] = step_failures(result.all_events)
    assert named in failure and "AccessDenied" in failure
    # Nothing lost: the file at fault is still in landing, every file is in landing or archive.
    landing = [k.removeprefix("landing/products/") for k in bucket_keys(LANDING, "landing/")]
    archived = [k.removeprefix("archive/products/") for k in bucket_keys(LAKE, "archive/")]
    assert "2.json" in landing
    assert sorted(landing + archived) == ["1.json", "2.json", "3.json"]
    assert glue_location("products") is None  # the failed batch published nothing

    fault.active = False
    assert ingest_what_the_sensor_requests(defs, instance).success
    assert materialize_day(defs, instance, [parquet_key("products"), table_key("products")]).success

    assert bucket_keys(LANDING, "landing/") == []
    assert bucket_keys(LAKE, "archive/") == [f"archive/products/{i}.json" for i in (1, 2, 3)]
    # Staged once or twice (a batch staged before its archive failed), served exactly once.
    location = glue_location("products")
    assert location is not None
    assert rows_at(location) == [(1, "A"), (2, "B"), (3, "C")]
    store = S3LakeStore(landing_bucket=LANDING, lake_bucket=LAKE)
    assert len(versions(store, "products", DAY)) == 1
