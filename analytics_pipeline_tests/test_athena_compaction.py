"""The Athena scale path: its SQL parses as Athena's, dedups like compact_day, and overwrites."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from moto import mock_aws

from analytics_pipeline.athena_compaction import (
    compact_days_in_athena,
    day_chunks,
    insert_days_sql,
    insert_statements,
    staged_table_ddl,
)
from analytics_pipeline.compaction import compact_day
from analytics_pipeline.datasets import DATASETS, dataset
from analytics_pipeline.resources.catalog import TableDef
from analytics_pipeline.resources.engine import QueryResult
from analytics_pipeline.resources.glue_catalog import GlueCatalog
from analytics_pipeline.resources.store import LocalLakeStore
from analytics_pipeline.staging import parquet_bytes, staged_schema

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
        event("_userauth.sign_up", 1),
        event("_userauth.sign_in", 2),
        event("_userauth.sign_up", 3),
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
    assert len(inserted) == 2


# running it


class RecordingEngine:
    """Stands in for Athena: records each statement and what the lake held when it ran."""

    def __init__(self, store: LocalLakeStore, glue: GlueCatalog, table: str) -> None:
        self.store, self.glue, self.table = store, glue, table
        self.statements: list[str] = []
        self.seen_at_insert: list[tuple[list[str], dict[str, str]]] = []

    def run_query(self, athena_sql: str) -> QueryResult:
        self.statements.append(athena_sql)
        if athena_sql.startswith("INSERT"):
            first, last = between(athena_sql)
            days = day_chunks(first, last)[0]
            objects = [
                p for d in days for p in self.store.list_files(f"parquet/{self.table}/dt={d}/")
            ]
            self.seen_at_insert.append((objects, self.glue.partitions(self.table, dts=days)))
        stats = {"athena_bytes_scanned": 1000, "athena_cost_usd": 0.5}
        return QueryResult(pa.table({}), athena_sql, "athena", 0.0, stats)


@pytest.fixture
def glue(monkeypatch: pytest.MonkeyPatch) -> Iterator[GlueCatalog]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield GlueCatalog(database="lake", lake_bucket="my-lake")


def old_days(store: LocalLakeStore, glue: GlueCatalog, days: list[str]) -> None:
    """Days already built in-process: a version file each, registered in Glue."""
    spec_table = PRODUCTS.tables[0]
    glue.ensure_table(
        TableDef(
            "products", tuple((f.name, f.athena_type) for f in PRODUCTS.table_fields(spec_table))
        )
    )
    locations = {}
    for dt in days:
        path = f"parquet/products/dt={dt}/v1/part-00000.snappy.parquet"
        store.write_bytes(path, b"old")
        locations[dt] = f"s3://my-lake/{path}"
    glue.register_partitions("products", locations)


def test_a_re_run_deletes_each_chunks_days_before_inserting_them(
    store: LocalLakeStore, glue: GlueCatalog
):
    first = date(2024, 1, 1)
    in_range = [(first + timedelta(n)).isoformat() for n in range(250)]
    old_days(store, glue, [*in_range[:3], in_range[150], in_range[-1], "2024-12-31"])
    engine = RecordingEngine(store, glue, "products")

    report = compact_days_in_athena(
        engine,
        store,
        glue,
        PRODUCTS,
        PRODUCTS.tables[0],
        in_range[0],
        in_range[-1],
        partitions_start="2020-01-01",
    )

    assert engine.statements[0].startswith(
        "CREATE EXTERNAL TABLE IF NOT EXISTS `lake`.`staged_products`"
    )
    assert len(engine.statements) == 4
    assert engine.seen_at_insert == [([], {}), ([], {}), ([], {})]
    # A day outside the range keeps its objects and registration.
    assert store.list_files("parquet/products/dt=2024-12-31/")
    assert list(glue.partitions("products")) == ["2024-12-31"]
    assert (report.days, len(report.chunks), report.bytes_scanned) == (250, 3, 3000)
    assert report.cost_usd == pytest.approx(1.5)
