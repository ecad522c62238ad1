"""Build one day of an output table from every staged file of that day, exactly once."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from analytics_pipeline.datasets.spec import DatasetSpec, TableSpec
from analytics_pipeline.partitions import validate_dt
from analytics_pipeline.resources.store import LakeStore
from analytics_pipeline.staging import SOURCE_COLUMNS, staged_schema


@dataclass(frozen=True)
class CompactedDay:
    table: pa.Table
    staged_files: int
    staged_rows: int  # as stored, duplicates from re-staged batches included
    distinct_records: int  # source records of the dataset for the day
    expected_rows: int  # distinct source records that belong in this table
    duplicates_dropped: int


def staged_prefix(spec: DatasetSpec, dt: str) -> str:
    return f"staged/{spec.name}/dt={validate_dt(dt)}/"


def read_staged_day(store: LakeStore, spec: DatasetSpec, dt: str) -> tuple[pa.Table, int]:
    """All staged rows of the day (in the staged schema) and how many files held them."""
    schema = staged_schema(spec)
    paths = [p for p in store.list_files(staged_prefix(spec, dt)) if p.endswith(".parquet")]
    tables = [
        pq.read_table(pa.BufferReader(store.read_bytes(p))).select(schema.names).cast(schema)
        for p in paths
    ]
    return (pa.concat_tables(tables) if tables else schema.empty_table()), len(paths)


def compact_day(store: LakeStore, spec: DatasetSpec, table: TableSpec, dt: str) -> CompactedDay:
    """Deduplicate by source record, keep the table's rows and columns, order deterministically."""
    staged, files = read_staged_day(store, spec, dt)
    con = duckdb.connect()
    try:
        con.register("staged", staged)
        source = ", ".join(f'"{c}"' for c in SOURCE_COLUMNS)
        columns = ", ".join(f'"{c}"' for c in table.columns)
        where = ""
        params: list[str] = []
        if table.where is not None:
            where = f'WHERE "{table.where[0]}" = ?'
            params.append(table.where[1])
        distinct = _count(con, f"SELECT DISTINCT {source} FROM staged", [])
        expected = _count(con, f"SELECT DISTINCT {source} FROM staged {where}", params)
        result = con.sql(
            f"""
            SELECT {columns} FROM staged {where}
            QUALIFY row_number() OVER (PARTITION BY {source} ORDER BY {source}) = 1
            ORDER BY {source}
            """,
            params=params,
        ).to_arrow_table()
    finally:
        con.close()
    data = pa.table(result).cast(spec.table_arrow_schema(table))
    return CompactedDay(
        table=data,
        staged_files=files,
        staged_rows=staged.num_rows,
        distinct_records=distinct,
        expected_rows=expected,
        duplicates_dropped=staged.num_rows - distinct,
    )


def _count(con: duckdb.DuckDBPyConnection, query: str, params: list[str]) -> int:
    # fetchall, not fetchone: DuckDB 2.0 refuses new work on a half-read result.
    rows = con.execute(f"SELECT count(*) FROM ({query})", params).fetchall()
    return int(rows[0][0])
