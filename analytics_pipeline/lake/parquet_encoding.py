"""Parquet as bytes, written the way Athena and Glue read best."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Snappy with millisecond timestamps: what Athena and Glue read best.
WRITE_OPTIONS = {
    "compression": "snappy",
    "coerce_timestamps": "ms",
    "allow_truncated_timestamps": False,
}


# Rows looked at to tell a column of few values from one of nearly unique values.
DICTIONARY_SAMPLE_ROWS = 256


def repetitive_columns(table: pa.Table) -> list[str]:
    """The columns worth a dictionary: at most half as many distinct values as rows in a
    sample of the first rows. In a small file a dictionary of nearly unique values (an id, a
    row's timestamps) holds every value once more and costs the writer the most: a day of
    2,700 rentals is 16% smaller and encodes in a third less time without those."""
    sample = table.slice(0, DICTIONARY_SAMPLE_ROWS)
    return [
        name
        for name, column in zip(sample.column_names, sample.columns, strict=True)
        if pc.count_distinct(column, mode="all").as_py() * 2 <= sample.num_rows
    ]


def parquet_bytes(
    table: pa.Table, metadata: dict[str, str] | None = None, use_dictionary: bool | list[str] = True
) -> bytes:
    """Snappy Parquet with millisecond timestamps (what Athena and Glue read best)."""
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        use_dictionary=use_dictionary,
        **WRITE_OPTIONS,
    )
    return sink.getvalue()
