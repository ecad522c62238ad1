"""Analytics SQL: Athena-dialect files that DuckDB runs locally, and the types they produce."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from importlib import resources

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import given
from hypothesis import strategies as st

from analytics_pipeline.cli.samples.movie_rental import sample_table_defs
from analytics_pipeline.datasets import DATASETS
from analytics_pipeline.datasets.spec import duckdb_type
from analytics_pipeline.datasets.table_def import table_def
from analytics_pipeline.defs.analytics import (
    ANALYTICS,
    AnalyticsSpec,
    athena_typed,
    canonical_order,
)
from analytics_pipeline.lake.versioned_days import content_digest
from analytics_pipeline.resources.local.engine import athena_to_duckdb

SQL_FILES = sorted(
    p.name for p in resources.files("analytics_pipeline.sql").iterdir() if p.name.endswith(".sql")
)
DT = "2024-03-01"


def test_every_sql_file_has_an_analytics_spec() -> None:
    assert sorted(f"{spec.name}.sql" for spec in ANALYTICS) == SQL_FILES


@pytest.mark.parametrize("spec", ANALYTICS, ids=lambda s: s.name)
def test_sql_parses_as_athena(spec: AnalyticsSpec) -> None:
    tree = sqlglot.parse_one(spec.sql(DT), read="athena")
    assert isinstance(tree, sqlglot.exp.Query)


@pytest.mark.parametrize("spec", ANALYTICS, ids=lambda s: s.name)
def test_sql_reads_only_its_declared_tables(spec: AnalyticsSpec) -> None:
    tree = sqlglot.parse_one(spec.sql(DT), read="athena")
    assert {t.name for t in tree.find_all(sqlglot.exp.Table)} == set(spec.tables)


@pytest.mark.parametrize("spec", ANALYTICS, ids=lambda s: s.name)
def test_sql_filters_on_the_partition_day(spec: AnalyticsSpec) -> None:
    tree = sqlglot.parse_one(spec.sql(DT), read="athena")
    day_filters = [
        eq for eq in tree.find_all(sqlglot.exp.EQ)
        if eq.left.name == "dt" and eq.right.is_string and eq.right.name == DT
    ]  # fmt: skip
    # The tables a day is read from are pruned to it: one filter per SELECT that reads a
    # table (each SELECT of a UNION), none needed where a SELECT reads a subquery.
    reading = [
        s for s in tree.find_all(sqlglot.exp.Select)
        if isinstance(s.args["from_"].this, sqlglot.exp.Table)
    ]  # fmt: skip
    assert len(day_filters) == len(reading) > 0


@pytest.mark.parametrize("spec", ANALYTICS, ids=lambda s: s.name)
def test_sql_transpiles_to_duckdb_that_duckdb_can_plan(spec: AnalyticsSpec) -> None:
    duck = athena_to_duckdb(spec.sql(DT))
    con = duckdb.connect()
    try:
        _create_empty_tables(con)
        con.execute(f"EXPLAIN {duck}").fetchall()
    finally:
        con.close()


def _create_empty_tables(con: duckdb.DuckDBPyConnection) -> None:
    tables = {
        table.name: table_def(spec, table).columns for spec in DATASETS for table in spec.tables
    }
    tables |= {t.name: t.columns for t in sample_table_defs()}  # the source, as extracted
    for name, definition in tables.items():
        columns = ", ".join(f'"{c}" {duckdb_type(k)}' for c, k in definition)
        con.execute(f'CREATE TABLE "{name}" ({columns}, dt VARCHAR)')


@pytest.mark.parametrize(
    "bad",
    [
        "2024-03-01' OR '1'='1",
        "2024-03-01'; DROP VIEW products; --",
        "2024-02-30",
        "20240301",
        "",
        "2024-03-01 ",
    ],
)
def test_sql_rejects_a_partition_key_that_is_not_a_date(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid partition key"):
        ANALYTICS[0].sql(bad)


def test_sql_puts_the_partition_key_in_a_string_literal() -> None:
    assert "WHERE dt = '2024-03-01'" in ANALYTICS[0].sql(DT)


def test_athena_typed_names_athena_types() -> None:
    table = pa.table(
        {
            "name": pa.array(["a"], pa.large_string()),
            "n64": pa.array([1], pa.int64()),
            "n32": pa.array([1], pa.int32()),
            "n16": pa.array([1], pa.int16()),
            "ratio": pa.array([0.5], pa.float32()),
            "flag": pa.array([True]),
            "day": pa.array([date(2024, 3, 1)], pa.date32()),
            "at": pa.array([datetime(2024, 3, 1, 12)], pa.timestamp("us")),
        }
    )
    typed, columns = athena_typed(table)
    assert columns == (
        ("name", "string"), ("n64", "bigint"), ("n32", "int"), ("n16", "smallint"),
        ("ratio", "double"), ("flag", "boolean"), ("day", "date"), ("at", "timestamp"),
    )  # fmt: skip
    assert typed.schema.field("name").type == pa.string()
    assert typed.schema.field("ratio").type == pa.float64()
    assert typed.schema.field("at").type == pa.timestamp("ms")
    assert typed.to_pylist() == [
        {"name": "a", "n64": 1, "n32": 1, "n16": 1, "ratio": 0.5, "flag": True,
         "day": date(2024, 3, 1), "at": datetime(2024, 3, 1, 12)}
    ]  # fmt: skip


def test_athena_typed_makes_duckdb_integer_sums_bigint() -> None:
    # DuckDB types sum(smallint) and count_if as HUGEINT; Athena types both as bigint.
    con = duckdb.connect()
    try:
        result = con.sql(
            "SELECT sum(x::SMALLINT) AS total, count_if(x > 1) AS n, avg(x::SMALLINT) AS mean "
            "FROM range(1, 4) AS t(x)"
        ).to_arrow_table()
    finally:
        con.close()
    typed, columns = athena_typed(result)
    assert columns == (("total", "bigint"), ("n", "bigint"), ("mean", "double"))
    assert typed.to_pylist() == [{"total": 6, "n": 2, "mean": 2.0}]


def test_athena_typed_keeps_fractional_decimals_exact() -> None:
    # A sum of money stays decimal; only one wider than Athena's 38 digits becomes double.
    table = pa.table(
        {
            "price": pa.array([Decimal("1.25")], pa.decimal128(10, 2)),
            "wide": pa.array([Decimal("1.25")], pa.decimal256(40, 2)),
        }
    )
    typed, columns = athena_typed(table)
    assert columns == (("price", "decimal(10,2)"), ("wide", "double"))
    assert typed.column("price").to_pylist() == [Decimal("1.25")]
    assert typed.column("wide").type == pa.float64()


def test_athena_typed_widens_unsigned_and_tiny_integers() -> None:
    table = pa.table(
        {
            "tiny": pa.array([-1], pa.int8()),
            "u8": pa.array([255], pa.uint8()),
            "u16": pa.array([65535], pa.uint16()),
            "u32": pa.array([2**32 - 1], pa.uint32()),
        }
    )
    typed, columns = athena_typed(table)
    assert [kind for _, kind in columns] == ["smallint", "smallint", "int", "bigint"]
    assert typed.to_pylist() == [{"tiny": -1, "u8": 255, "u16": 65535, "u32": 2**32 - 1}]


def test_athena_typed_truncates_timestamps_to_milliseconds() -> None:
    table = pa.table({"at": pa.array([datetime(2024, 3, 1, 12, 0, 0, 123456)], pa.timestamp("us"))})
    typed, _ = athena_typed(table)
    assert typed.column("at").to_pylist() == [datetime(2024, 3, 1, 12, 0, 0, 123000)]


def test_athena_typed_refuses_a_type_athena_tables_cannot_hold() -> None:
    table = pa.table({"tags": pa.array([["a"]], pa.list_(pa.string()))})
    with pytest.raises(TypeError, match="column tags: no Athena type"):
        athena_typed(table)


_ROWS = st.lists(
    st.tuples(
        st.one_of(st.none(), st.text(max_size=3)),
        st.one_of(st.none(), st.integers(-3, 3)),
        st.one_of(st.none(), st.floats(allow_nan=False)),
        st.one_of(st.none(), st.booleans()),
    ),
    max_size=12,
)


@given(rows=_ROWS, order=st.randoms(use_true_random=False))
def test_canonical_order_gives_one_digest_for_any_row_order(rows, order) -> None:
    # An unordered GROUP BY returns a day's rows in any order; the same rows must digest
    # alike, or an unchanged day is written again (a backfill would rewrite it).
    shuffled = list(rows)
    order.shuffle(shuffled)
    names = ["s", "n", "x", "b"]
    tables = [pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rs], schema=_SCHEMA)
              for rs in (rows, shuffled)]  # fmt: skip
    first, second = (canonical_order(t) for t in tables)
    assert content_digest(first) == content_digest(second)
    assert sorted(map(repr, first.to_pylist())) == sorted(map(repr, tables[0].to_pylist()))


_SCHEMA = pa.schema([("s", pa.string()), ("n", pa.int64()), ("x", pa.float64()), ("b", pa.bool_())])


def test_digest_alone_depends_on_row_order() -> None:
    # The control: without the canonical order the same rows in another order digest apart.
    rows = pa.table({"s": ["a", "b"]})
    assert content_digest(rows) != content_digest(rows.take([1, 0]))
    assert content_digest(canonical_order(rows)) == content_digest(
        canonical_order(rows.take([1, 0]))
    )
