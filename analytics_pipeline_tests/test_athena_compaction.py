"""The Athena scale path: its SQL parses as Athena's, dedups like compact_day, and overwrites."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pyarrow as pa
import pytest
import sqlglot
from botocore.stub import Stubber
from moto import mock_aws

from analytics_pipeline.datasets import DATASETS, dataset
from analytics_pipeline.datasets.spec import TableSpec
from analytics_pipeline.lake.athena_compaction import AthenaCompaction, compact_days_in_athena
from analytics_pipeline.lake.athena_compaction_sql import (
    day_chunks,
    insert_days_sql,
    insert_statements,
    staged_table_ddl,
)
from analytics_pipeline.lake.athena_cost import query_cost_usd
from analytics_pipeline.lake.compaction import compact_day
from analytics_pipeline.lake.parquet_encoding import parquet_bytes
from analytics_pipeline.lake.staging import staged_schema
from analytics_pipeline.lake.versioned_days import publish_partition, versions, write_partition
from analytics_pipeline.resources.aws import athena_engine
from analytics_pipeline.resources.aws.athena_engine import AthenaEngine, AthenaQueryError
from analytics_pipeline.resources.aws.glue_catalog import GlueCatalog, ProjectionLayoutError
from analytics_pipeline.resources.aws.s3_store import S3LakeStore
from analytics_pipeline.resources.catalog import TableDef
from analytics_pipeline.resources.engine import QueryResult
from analytics_pipeline.resources.local.store import LocalLakeStore

TABLES = [(spec, table) for spec in DATASETS for table in spec.tables]
APP_EVENTS = dataset("app_events")
SIGN_UPS = next(t for t in APP_EVENTS.tables if t.name == "sign_up_events")
PRODUCTS = dataset("products")


def between(sql: str) -> tuple[str, str]:
    found = re.search(r"\"dt\" BETWEEN '([\d-]+)' AND '([\d-]+)'", sql)
    assert found, sql
    return found.group(1), found.group(2)


# the SQL


@pytest.mark.parametrize("spec", DATASETS, ids=lambda s: s.name)
def test_the_staged_table_ddl_parses_as_athena(spec):
    ddl = staged_table_ddl(
        spec, database="lake", lake_bucket="my-lake", partitions_start="2020-01-01"
    )

    parsed = sqlglot.parse_one(ddl, read="athena")

    assert isinstance(parsed, sqlglot.exp.Create)
    assert "LOCATION 's3://my-lake/staged/" in ddl
    assert f"'storage.location.template'='s3://my-lake/staged/{spec.name}/dt=${{dt}}/'" in ddl


@pytest.mark.parametrize(("spec", "table"), TABLES, ids=lambda x: getattr(x, "name", ""))
def test_the_insert_parses_as_athena(spec, table):
    sql = insert_days_sql(spec, table, database="lake", first="2024-01-01", last="2024-01-31")

    assert isinstance(sqlglot.parse_one(sql, read="athena"), sqlglot.exp.Insert)


def test_a_250_day_range_becomes_three_inserts_of_at_most_100_days():
    statements = insert_statements(
        PRODUCTS, PRODUCTS.tables[0], database="lake", first="2024-01-01", last="2024-09-06"
    )

    ranges = [between(s) for s in statements]
    assert ranges == [
        ("2024-01-01", "2024-04-09"),
        ("2024-04-10", "2024-07-18"),
        ("2024-07-19", "2024-09-06"),
    ]
    spans = [(date.fromisoformat(b) - date.fromisoformat(a)).days + 1 for a, b in ranges]
    assert spans == [100, 100, 50]


def test_an_insert_of_more_than_100_days_is_refused():
    with pytest.raises(ValueError, match="101 days"):
        insert_days_sql(
            PRODUCTS, PRODUCTS.tables[0], database="lake", first="2024-01-01", last="2024-04-10"
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"database": 'lake"; DROP TABLE x; --'}, "invalid table or column name"),
        ({"first": "2024-01-01' OR '1'='1"}, "invalid partition key"),
    ],
)
def test_unchecked_names_and_days_never_reach_the_sql(kwargs, message):
    arguments = {"database": "lake", "first": "2024-01-01", "last": "2024-01-02", **kwargs}

    with pytest.raises(ValueError, match=message):
        insert_days_sql(PRODUCTS, PRODUCTS.tables[0], **arguments)


def test_an_invalid_bucket_never_reaches_the_ddl():
    with pytest.raises(ValueError, match="invalid S3 bucket name"):
        staged_table_ddl(
            PRODUCTS, database="lake", lake_bucket="b' --", partitions_start="2020-01-01"
        )


def test_day_chunks_cover_the_range_without_gaps():
    chunks = day_chunks("2023-12-30", "2024-01-03", size=2)

    assert chunks == [["2023-12-30", "2023-12-31"], ["2024-01-01", "2024-01-02"], ["2024-01-03"]]


def test_the_insert_keeps_the_same_rows_as_compact_day(store: LocalLakeStore, lake_dir: Path):
    """Run the Athena INSERT (transpiled) over staged files holding a re-staged batch."""
    day = "2024-03-05"
    schema = staged_schema(APP_EVENTS)
    base = {f.name: None for f in APP_EVENTS.fields}

    def event(kind: str, line: int) -> dict:
        return {
            **base,
            "event_type": kind,
            "datetime": datetime(2024, 3, 5, 10, line),
            "session_id": f"s{line}",
            "email": f"u{line}@example.com",
            "_source_key": "events.ndjson",
            "_source_version": "etag1",
            "_source_line": line,
        }

    rows = [
        event("SignUpEvent", 1),
        event("SignInEvent", 2),
        event("_userauth.sign_up", 3),
        event("_userauth.sign_in", 4),
        event("SignUpEvent", 5),
    ]
    # The same batch staged twice (a crash after staging, before archiving).
    for batch in ("a", "b"):
        path = f"staged/app_events/dt={day}/{batch}-0000.parquet"
        store.write_bytes(path, parquet_bytes(pa.Table.from_pylist(rows, schema=schema)))
    expected = compact_day(store, APP_EVENTS, SIGN_UPS, day).table.to_pylist()

    sql = insert_days_sql(APP_EVENTS, SIGN_UPS, database="lake", first=day, last=day)
    con = duckdb.connect()
    try:
        con.execute("ATTACH ':memory:' AS lake")
        staged = lake_dir / "staged" / "app_events"
        con.execute(
            "CREATE TABLE lake.staged_app_events AS SELECT * FROM read_parquet("
            f"'{staged}/*/*.parquet', hive_partitioning = true, hive_types = {{'dt': VARCHAR}})"
        )
        columns = ", ".join(f'"{c}"' for c in SIGN_UPS.columns)
        con.execute(
            f"CREATE TABLE lake.sign_up_events AS SELECT {columns}, dt "
            "FROM lake.staged_app_events WHERE false"
        )
        con.execute(sqlglot.transpile(sql, read="athena", write="duckdb")[0])
        inserted = con.execute(
            f"SELECT {columns}, dt FROM lake.sign_up_events ORDER BY session_id"
        ).fetchall()
    finally:
        con.close()

    assert [row[:-1] for row in inserted] == [tuple(r.values()) for r in expected]
    assert {row[-1] for row in inserted} == {day}
    assert [row[0] for row in inserted] == ["SignUpEvent", "_userauth.sign_up", "SignUpEvent"]


def test_a_table_taking_several_event_types_selects_them_with_in() -> None:
    sql = insert_days_sql(
        APP_EVENTS, SIGN_UPS, database="lake", first="2024-03-05", last="2024-03-05"
    )
    assert "\"event_type\" IN ('SignUpEvent', '_userauth.sign_up')" in sql
    sqlglot.parse_one(sql, read="athena")


def test_event_type_literals_are_escaped_in_the_in_list() -> None:
    quoted = TableSpec("t", ("event_type",), where_in=("event_type", ("it's", "plain")))
    spec = dataclasses.replace(APP_EVENTS, tables=(quoted,))
    sql = insert_days_sql(spec, quoted, database="lake", first="2024-03-05", last="2024-03-05")
    assert "\"event_type\" IN ('it''s', 'plain')" in sql
    sqlglot.parse_one(sql, read="athena")


# running it: moto for S3 and Glue, botocore's Stubber for Athena's API


LAKE = "my-lake"
START = date(2024, 1, 1)
RANGE = [(START + timedelta(n)).isoformat() for n in range(150)]  # 100 + 50 days


def rows_of(dt: str) -> int:
    """Staged rows per day in these tests: every seventh day has none."""
    n = date.fromisoformat(dt).toordinal()
    return 0 if n % 7 == 0 else n % 50 + 1


@pytest.fixture
def lake(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[S3LakeStore, GlueCatalog]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(athena_engine, "_sleep", lambda _: None)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=LAKE)
        yield (
            S3LakeStore(landing_bucket=LAKE, lake_bucket=LAKE),
            GlueCatalog(database="lake", lake_bucket=LAKE),
        )


class StubbedAthena:
    """The real AthenaEngine over a Stubber'd client, playing Athena's side of an INSERT:
    it writes an extensionless file into each registered scratch partition that has rows,
    before the query's outcome is known (a failed INSERT leaves its partial files too)."""

    def __init__(self, store: S3LakeStore, glue: GlueCatalog) -> None:
        self.store, self.glue = store, glue
        self.engine = AthenaEngine(
            database="lake", workgroup="analytics", output_location="s3://results/athena/"
        )
        self.stub = Stubber(self.engine.athena_client())
        self.stub.activate()
        self.statements: list[str] = []
        self.queries = 0

    def expect(
        self,
        *,
        state: str = "SUCCEEDED",
        reason: str | None = None,
        scanned: int = 0,
        statement_type: str = "DML",
        rows: list[list[str]] | None = None,
    ) -> None:
        self.queries += 1
        query_id = f"q{self.queries}"
        self.stub.add_response("start_query_execution", {"QueryExecutionId": query_id}, None)
        status: dict[str, Any] = {"State": state}
        if reason:
            status["StateChangeReason"] = reason
        self.stub.add_response(
            "get_query_execution",
            {
                "QueryExecution": {
                    "QueryExecutionId": query_id,
                    "StatementType": statement_type,
                    "Status": status,
                    "Statistics": {"DataScannedInBytes": scanned},
                }
            },
            {"QueryExecutionId": query_id},
        )
        if state != "SUCCEEDED":
            return
        columns = [{"Name": "dt", "Type": "varchar"}, {"Name": "rows", "Type": "bigint"}]
        table = [["dt", "rows"], *rows] if rows is not None else []
        self.stub.add_response(
            "get_query_results",
            {
                "ResultSet": {
                    "Rows": [{"Data": [{"VarCharValue": v} for v in row]} for row in table],
                    "ResultSetMetadata": {"ColumnInfo": columns if rows is not None else []},
                }
            },
            None,
        )

    def expect_chunk(self, days: list[str], scanned: int) -> None:
        self.expect(scanned=scanned)  # INSERT
        self.expect(
            scanned=1_000,
            rows=[[dt, str(rows_of(dt))] for dt in days if rows_of(dt)],
        )  # count

    def run_query(self, athena_sql: str) -> QueryResult:
        self.statements.append(athena_sql)
        if athena_sql.startswith("INSERT INTO"):
            scratch = athena_sql.split(".", 1)[1].split(" ", 1)[0].strip('"')
            first, last = between(athena_sql)
            for dt, location in self.glue.partitions(scratch).items():
                if first <= dt <= last and rows_of(dt):
                    path = location.removeprefix(f"s3://{LAKE}/")
                    self.store.write_bytes(f"{path}20240601_101010_00007_abcde_{dt}", b"PAR1")
        return self.engine.run_query(athena_sql)


def built_in_process(store: S3LakeStore, glue: GlueCatalog, days: list[str]) -> dict[str, str]:
    """Days the in-process path built: a version file each, registered in Glue."""
    glue.ensure_table(
        TableDef(
            "products",
            tuple((f.name, f.athena_type) for f in PRODUCTS.table_fields(PRODUCTS.tables[0])),
        )
    )
    locations = {}
    for dt in days:
        path = f"parquet/products/dt={dt}/20231231T000000000000Z-00000000/part-00000.snappy.parquet"
        store.write_bytes(path, b"old")
        locations[dt] = store.location(path)
    glue.register_partitions("products", locations)
    return locations


def objects(store: S3LakeStore, dt: str) -> list[str]:
    return [p.split(f"dt={dt}/", 1)[1] for p in store.list_files(f"parquet/products/dt={dt}")]


def compact_products(
    store: S3LakeStore, glue: GlueCatalog, first: str, last: str, athena: Any
) -> AthenaCompaction:
    """The scale path over products' days first..last, Athena's side played by `athena`."""
    return compact_days_in_athena(
        athena,
        store,
        glue,
        PRODUCTS,
        PRODUCTS.tables[0],
        first,
        last,
        partitions_start="2020-01-01",
    )


def test_150_days_are_two_chunks_each_repointed_to_a_new_version(lake):
    store, glue = lake
    old = built_in_process(store, glue, RANGE)
    athena = StubbedAthena(store, glue)
    athena.expect(statement_type="DDL")
    athena.expect_chunk(RANGE[:100], scanned=3 * 10**9)
    athena.expect_chunk(RANGE[100:], scanned=10**9)

    report = compact_products(store, glue, RANGE[0], RANGE[-1], athena)

    athena.stub.assert_no_pending_responses()
    kinds = [s.split(" ", 3)[:3] for s in athena.statements]
    assert kinds[0] == ["CREATE", "EXTERNAL", "TABLE"]
    assert [k[0] for k in kinds[1:]] == ["INSERT", "SELECT", "INSERT", "SELECT"]
    assert [between(s) for s in athena.statements[1:]] == [
        (RANGE[0], RANGE[99]),
        (RANGE[0], RANGE[99]),
        (RANGE[100], RANGE[-1]),
        (RANGE[100], RANGE[-1]),
    ]
    for statement in athena.statements[1:]:
        assert '"lake"."scratch_products_' in statement  # never the served table directly
        sqlglot.parse_one(statement, read="athena")
    # Every day with rows is served from its new version; the old version is gone.
    served = glue.partitions("products")
    written = [dt for dt in RANGE if rows_of(dt)]
    for dt in written:
        version = report.locations[dt].split(f"dt={dt}/", 1)[1]
        assert (
            served[dt] == report.locations[dt] == f"s3://{LAKE}/parquet/products/dt={dt}/{version}"
        )
        assert objects(store, dt) == [f"{version}20240601_101010_00007_abcde_{dt}"]
        assert report.previous_locations[dt] == old[dt]
    # A day without staged rows is left as it was.
    for dt in report.empty_days:
        assert served[dt] == old[dt] and objects(store, dt) == [old[dt].split(f"dt={dt}/")[1]]
    assert report.empty_days == [dt for dt in RANGE if not rows_of(dt)]
    assert report.rows_by_day == {dt: rows_of(dt) for dt in RANGE}
    assert report.rows == sum(rows_of(dt) for dt in RANGE)
    assert (report.days, len(report.chunks)) == (150, 2)
    assert report.bytes_scanned == 4 * 10**9 + 2_000
    assert report.cost_usd == pytest.approx(
        query_cost_usd(3 * 10**9) + query_cost_usd(10**9) + 2 * query_cost_usd(1_000)
    )
    assert report.query_ids == ["q1", "q2", "q3", "q4", "q5"]
    assert report.metadata()["dagster/row_count"] == report.rows
    assert glue.tables() == ["products"]  # the scratch tables are gone


def test_a_failure_in_chunk_two_raises_athenas_reason_and_chunk_one_stays_done(lake):
    store, glue = lake
    old = built_in_process(store, glue, RANGE)
    athena = StubbedAthena(store, glue)
    athena.expect(statement_type="DDL")
    athena.expect_chunk(RANGE[:100], scanned=10**9)
    athena.expect(state="FAILED", reason="HIVE_BAD_DATA: Field id's type INT64 is incompatible")

    with pytest.raises(AthenaQueryError, match="q4 FAILED: HIVE_BAD_DATA: Field id's type"):
        compact_products(store, glue, RANGE[0], RANGE[-1], athena)

    athena.stub.assert_no_pending_responses()
    assert [s.split(" ", 1)[0] for s in athena.statements] == [
        "CREATE",
        "INSERT",
        "SELECT",
        "INSERT",
    ]
    served = glue.partitions("products")
    for dt in RANGE[:100]:  # chunk one: done
        if rows_of(dt):
            assert served[dt] != old[dt] and "20240601_101010" in objects(store, dt)[0]
    for dt in RANGE[100:]:  # chunk two: the previous version, and nothing else
        assert served[dt] == old[dt]
        assert objects(store, dt) == [old[dt].split(f"dt={dt}/")[1]]
    assert glue.tables() == ["products"]


def test_the_in_process_path_takes_over_a_day_athena_built(lake):
    store, glue = lake
    day = RANGE[1]
    athena = StubbedAthena(store, glue)
    athena.expect(statement_type="DDL")
    athena.expect_chunk([day], scanned=10)
    report = compact_products(store, glue, day, day, athena)
    athena_version = report.chunks[0].version
    # Athena's files are not taken for in-process versions ...
    assert versions(store, "products", day) == []

    data = pa.table({"id": [1], "date": [date(2024, 1, 2)], "product": ["A"]})
    written = write_partition(store, "products", day, data)
    published = publish_partition(
        store,
        glue,
        TableDef("products", (("id", "bigint"), ("date", "date"), ("product", "string"))),
        day,
        written.path,
    )

    # ... and once the day is repointed, Athena's older version folder goes like any other.
    assert glue.partition_location("products", day) == store.location(written.path)
    assert published.previous_location == report.locations[day]
    assert not any(o.startswith(athena_version) for o in objects(store, day))
    assert objects(store, day) == [written.path.split(f"dt={day}/")[1]]


def test_a_projected_table_is_refused(lake):
    store, _ = lake
    glue = GlueCatalog(database="lake", lake_bucket=LAKE, projected_tables=["products"])
    with pytest.raises(ProjectionLayoutError, match="partition projection"):
        compact_products(store, glue, RANGE[0], RANGE[1], StubbedAthena(store, glue))
