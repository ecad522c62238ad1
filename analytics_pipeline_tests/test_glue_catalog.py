"""The Glue catalog against moto: tables from specs, schema changes, partitions and projection."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from moto import mock_aws

from analytics_pipeline.resources.aws.glue_catalog import GlueCatalog, ProjectionLayoutError
from analytics_pipeline.resources.aws.glue_inputs import (
    LOCATION_PARAMETER,
    PARQUET_INPUT_FORMAT,
    PARQUET_OUTPUT_FORMAT,
    PARQUET_SERDE,
    dt_expressions,
)
from analytics_pipeline.resources.catalog import SchemaChangeError, TableDef

EVENTS = TableDef("events", (("id", "bigint"), ("name", "string")), "test events")
LAKE = "s3://my-lake/parquet/events"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def glue(aws: None) -> GlueCatalog:
    return GlueCatalog(database="lake", lake_bucket="my-lake")


def file_uri(dt: str, version: str = "v1") -> str:
    return f"{LAKE}/dt={dt}/{version}/part-00000.snappy.parquet"


def days(n: int, start: date = date(2024, 1, 1)) -> list[str]:
    return [(start + timedelta(i)).isoformat() for i in range(n)]


def calls(catalog: GlueCatalog, operation: str) -> list[dict[str, Any]]:
    """The parameters of every call to `operation` the catalog's client makes from now on."""
    seen: list[dict[str, Any]] = []
    catalog.glue_client().meta.events.register(
        f"provide-client-params.glue.{operation}",
        lambda params, **_: seen.append(params),
    )
    return seen


def glue_table(catalog: GlueCatalog, name: str = "events") -> dict[str, Any]:
    return catalog.glue_client().get_table(DatabaseName="lake", Name=name)["Table"]


def glue_partition(catalog: GlueCatalog, dt: str) -> dict[str, Any]:
    return catalog.glue_client().get_partition(
        DatabaseName="lake", TableName="events", PartitionValues=[dt]
    )["Partition"]


# tables


def test_ensure_table_creates_an_external_parquet_table_partitioned_by_dt(glue: GlueCatalog):
    assert glue.ensure_table(EVENTS) == "created"

    table = glue_table(glue)
    storage = table["StorageDescriptor"]
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert table["Parameters"]["classification"] == "parquet"
    assert table["PartitionKeys"][0]["Name"] == "dt"
    assert table["PartitionKeys"][0]["Type"] == "string"
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == list(EVENTS.columns)
    assert storage["Location"] == "s3://my-lake/parquet/events/"
    assert storage["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert (storage["InputFormat"], storage["OutputFormat"]) == (
        PARQUET_INPUT_FORMAT,
        PARQUET_OUTPUT_FORMAT,
    )
    assert not any(k.startswith("projection.") for k in table["Parameters"])


def test_ensure_table_creates_the_database_when_it_is_missing(glue: GlueCatalog):
    glue.ensure_table(EVENTS)

    assert glue.glue_client().get_database(Name="lake")["Database"]["Name"] == "lake"
    assert glue.tables() == ["events"]


def test_ensure_table_again_reports_unchanged_and_does_not_update(glue: GlueCatalog):
    glue.ensure_table(EVENTS)
    updates = calls(glue, "UpdateTable")

    assert glue.ensure_table(EVENTS) == "unchanged"
    assert updates == []


def test_a_spec_that_adds_a_column_updates_the_table(glue: GlueCatalog):
    glue.ensure_table(EVENTS)
    wider = TableDef("events", (*EVENTS.columns, ("score", "double")), EVENTS.description)

    assert glue.ensure_table(wider) == "updated"

    columns = glue_table(glue)["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == list(wider.columns)


@pytest.mark.parametrize(
    ("columns", "named"),
    [
        ((("id", "string"), ("name", "string")), "retyped id: bigint -> string"),
        ((("id", "bigint"),), "dropped name"),
    ],
)
def test_an_incompatible_change_names_the_column_and_leaves_the_table(
    glue: GlueCatalog, columns: tuple[tuple[str, str], ...], named: str
):
    glue.ensure_table(EVENTS)

    with pytest.raises(SchemaChangeError, match=named):
        glue.ensure_table(TableDef("events", columns))

    stored = glue_table(glue)["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in stored] == list(EVENTS.columns)


def test_an_unknown_column_type_is_refused_before_any_call(glue: GlueCatalog):
    with pytest.raises(ValueError, match="unknown type 'varchar2' for name"):
        glue.ensure_table(TableDef("events", (("id", "bigint"), ("name", "varchar2"))))


def test_a_projected_table_carries_the_date_projection_of_its_days(aws: None):
    glue = GlueCatalog(database="lake", lake_bucket="my-lake", projected_tables=["events"])

    glue.ensure_table(EVENTS)

    parameters = glue_table(glue)["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.dt.type"] == "date"
    assert parameters["projection.dt.format"] == "yyyy-MM-dd"
    assert parameters["projection.dt.range"] == "2020-01-01,NOW+1DAYS"
    assert parameters["storage.location.template"] == "s3://my-lake/parquet/events/dt=${dt}/"


def test_switching_projection_off_removes_it_from_the_table(aws: None):
    GlueCatalog(database="lake", lake_bucket="my-lake", projected_tables=["events"]).ensure_table(
        EVENTS
    )
    glue = GlueCatalog(database="lake", lake_bucket="my-lake")

    assert glue.ensure_table(EVENTS) == "updated"

    parameters = glue_table(glue)["Parameters"]
    assert not [k for k in parameters if k.startswith("projection.") or k.startswith("storage.")]


# one partition


def test_register_partition_points_glue_at_the_version_directory(glue: GlueCatalog):
    glue.ensure_table(EVENTS)

    previous = glue.register_partition("events", "2024-05-01", file_uri("2024-05-01"))

    assert previous is None
    partition = glue_partition(glue, "2024-05-01")
    assert partition["StorageDescriptor"]["Location"] == f"{LAKE}/dt=2024-05-01/v1/"
    assert partition["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert partition["Parameters"][LOCATION_PARAMETER] == file_uri("2024-05-01")
    assert glue.partition_location("events", "2024-05-01") == file_uri("2024-05-01")


def test_registering_a_day_again_repoints_it_and_returns_the_file_it_replaced(glue: GlueCatalog):
    glue.ensure_table(EVENTS)
    glue.register_partition("events", "2024-05-01", file_uri("2024-05-01", "v1"))
    updates = calls(glue, "UpdatePartition")

    previous = glue.register_partition("events", "2024-05-01", file_uri("2024-05-01", "v2"))

    assert previous == file_uri("2024-05-01", "v1")
    assert [u["PartitionValueList"] for u in updates] == [["2024-05-01"]]
    location = glue_partition(glue, "2024-05-01")["StorageDescriptor"]["Location"]
    assert location == f"{LAKE}/dt=2024-05-01/v2/"


@pytest.mark.parametrize(
    "location",
    [
        file_uri("2024-05-02"),  # another day
        "s3://other-bucket/parquet/events/dt=2024-05-01/v1/part-00000.snappy.parquet",
        f"{LAKE}/dt=2024-05-01/../dt=2024-05-02/v1/part-00000.snappy.parquet",
    ],
)
def test_a_location_outside_the_day_is_refused(glue: GlueCatalog, location: str):
    glue.ensure_table(EVENTS)

    with pytest.raises(ValueError, match="is not under s3://my-lake/parquet/events/dt=2024-05-01/"):
        glue.register_partition("events", "2024-05-01", location)


def test_an_invalid_day_is_refused(glue: GlueCatalog):
    glue.ensure_table(EVENTS)

    with pytest.raises(ValueError, match="invalid partition key '2024-02-30'"):
        glue.register_partition("events", "2024-02-30", file_uri("2024-02-30"))


def test_registering_a_day_of_an_unknown_table_says_so(glue: GlueCatalog):
    glue.ensure_table(EVENTS)

    with pytest.raises(KeyError, match="'missing' is not in Glue database lake"):
        glue.register_partition(
            "missing", "2024-05-01", "s3://my-lake/parquet/missing/dt=2024-05-01/v1/p.parquet"
        )


def test_an_unregistered_day_has_no_location(glue: GlueCatalog):
    glue.ensure_table(EVENTS)

    assert glue.partition_location("events", "2024-05-01") is None


# projection


def test_a_projected_table_refuses_a_versioned_location(aws: None):
    glue = GlueCatalog(database="lake", lake_bucket="my-lake", projected_tables=["events"])
    glue.ensure_table(EVENTS)

    with pytest.raises(ProjectionLayoutError, match="uses partition projection"):
        glue.register_partition("events", "2024-05-01", file_uri("2024-05-01"))


def test_a_projected_table_takes_the_fixed_layout_without_registering_in_glue(aws: None):
    glue = GlueCatalog(database="lake", lake_bucket="my-lake", projected_tables=["events"])
    glue.ensure_table(EVENTS)
    creates = calls(glue, "BatchCreatePartition")

    previous = glue.register_partition(
        "events", "2024-05-01", f"{LAKE}/dt=2024-05-01/part-00000.snappy.parquet"
    )

    assert previous is None
    assert creates == []
    assert glue.partitions("events") == {}


# many partitions


def test_register_partitions_creates_at_most_100_per_call(glue: GlueCatalog):
    glue.ensure_table(EVENTS)
    creates = calls(glue, "BatchCreatePartition")
    backfill = {dt: file_uri(dt) for dt in days(250)}

    previous = glue.register_partitions("events", backfill)

    assert [len(c["PartitionInputList"]) for c in creates] == [100, 100, 50]
    assert previous == dict.fromkeys(backfill)
    assert glue.partitions("events") == backfill


def test_register_partitions_repoints_days_that_already_exist(glue: GlueCatalog):
    glue.ensure_table(EVENTS)
    glue.register_partitions("events", {dt: file_uri(dt, "v1") for dt in days(3)})
    updates = calls(glue, "BatchUpdatePartition")

    # Days 2 and 3 come back as AlreadyExistsException entries in Errors.
    previous = glue.register_partitions("events", {dt: file_uri(dt, "v2") for dt in days(4)[1:]})

    assert previous == {
        "2024-01-02": file_uri("2024-01-02", "v1"),
        "2024-01-03": file_uri("2024-01-03", "v1"),
        "2024-01-04": None,
    }
    assert [len(u["Entries"]) for u in updates] == [2]
    assert glue.partitions("events") == {
        "2024-01-01": file_uri("2024-01-01", "v1"),
        "2024-01-02": file_uri("2024-01-02", "v2"),
        "2024-01-03": file_uri("2024-01-03", "v2"),
        "2024-01-04": file_uri("2024-01-04", "v2"),
    }


def test_partitions_of_some_days_reads_only_those(glue: GlueCatalog):
    glue.ensure_table(EVENTS)
    glue.register_partitions("events", {dt: file_uri(dt) for dt in days(5)})

    assert glue.partitions("events", dts=["2024-01-02", "2024-01-04", "2023-01-01"]) == {
        "2024-01-02": file_uri("2024-01-02"),
        "2024-01-04": file_uri("2024-01-04"),
    }


def test_day_filters_stay_under_glues_expression_limit():
    wanted = days(1000)

    expressions = dt_expressions(wanted)

    assert len(expressions) > 1
    assert all(len(e) <= 2048 for e in expressions)
    listed = [d.strip("'") for e in expressions for d in e[len("dt IN (") : -1].split(",")]
    assert listed == wanted


def test_delete_partitions_deregisters_in_calls_of_25_and_ignores_missing_days(glue: GlueCatalog):
    glue.ensure_table(EVENTS)
    glue.register_partitions("events", {dt: file_uri(dt) for dt in days(30)})
    deletes = calls(glue, "BatchDeletePartition")

    glue.delete_partitions("events", days(40))

    assert [len(d["PartitionsToDelete"]) for d in deletes] == [25, 15]
    assert glue.partitions("events") == {}


# pagination (moto returns everything in one page, so the pages are stubbed)


def test_partitions_follows_every_page(glue: GlueCatalog):
    def page(dt: str, token: str | None) -> dict[str, Any]:
        response: dict[str, Any] = {
            "Partitions": [
                {
                    "Values": [dt],
                    "StorageDescriptor": {"Location": f"{LAKE}/dt={dt}/v1/"},
                    "Parameters": {LOCATION_PARAMETER: file_uri(dt)},
                }
            ]
        }
        if token:
            response["NextToken"] = token
        return response

    stub = Stubber(glue.glue_client())
    stub.add_response(
        "get_partitions", page("2024-01-01", "t1"), {"DatabaseName": "lake", "TableName": "events"}
    )
    stub.add_response(
        "get_partitions",
        page("2024-01-02", None),
        {"DatabaseName": "lake", "TableName": "events", "NextToken": "t1"},
    )
    with stub:
        found = glue.partitions("events")

    assert found == {dt: file_uri(dt) for dt in days(2)}
    stub.assert_no_pending_responses()


def test_tables_follows_every_page(glue: GlueCatalog):
    stub = Stubber(glue.glue_client())
    stub.add_response(
        "get_tables", {"TableList": [{"Name": "b"}], "NextToken": "t1"}, {"DatabaseName": "lake"}
    )
    stub.add_response(
        "get_tables", {"TableList": [{"Name": "a"}]}, {"DatabaseName": "lake", "NextToken": "t1"}
    )
    with stub:
        assert glue.tables() == ["a", "b"]
    stub.assert_no_pending_responses()
