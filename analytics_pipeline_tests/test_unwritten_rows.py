"""Staged rows waiting to be written, split by day: every row once, in its day, in order."""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_pipeline.datasets import dataset
from analytics_pipeline.lake.staging.staged_files import (
    MAX_SLICED_DAYS,
    SOURCE_TEXT,
    UnwrittenRows,
    staged_schema,
)

PRODUCTS = dataset("products")
SCHEMA = staged_schema(PRODUCTS)
FIRST = date(2024, 1, 1)


def batch(first_id: int, days: list[int], dictionary_sources: bool) -> pa.Table:
    """A batch of typed rows as the stager adds them: one day offset per row."""
    ids = list(range(first_id, first_id + len(days)))
    source_type = SOURCE_TEXT if dictionary_sources else pa.string()
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "date": pa.array([FIRST + timedelta(days=d) for d in days], pa.date32()),
            "product": pa.array(["ABC"[i % 3] for i in ids]),
            "dt": pa.array([(FIRST + timedelta(days=d)).isoformat() for d in days]),
            "_source_line": pa.array([1] * len(ids), pa.int32()),
            "_source_key": pa.array([f"{i}.json" for i in ids]).cast(source_type),
            "_source_version": pa.array([f"v{i}" for i in ids]).cast(source_type),
        }
    )


batches = st.lists(
    st.tuples(
        st.lists(st.integers(0, 9), max_size=60),  # a day each row: in stretches or not
        st.booleans(),  # source columns as dictionaries (one-file tables) or strings
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(batches=batches)
def test_every_row_lands_in_its_day_once_in_the_order_added(
    batches: list[tuple[list[int], bool]],
) -> None:
    pending = UnwrittenRows()
    expected: dict[str, list[int]] = {}
    next_id = 0
    for days, dictionary_sources in batches:
        pending.add_table(batch(next_id, days, dictionary_sources))
        for i, d in enumerate(days):
            expected.setdefault((FIRST + timedelta(days=d)).isoformat(), []).append(next_id + i)
        next_id += len(days)

    split = pending.by_dt(SCHEMA)

    assert [dt for dt, _ in split] == sorted(expected)
    for dt, table in split:
        assert table.schema == SCHEMA
        assert table.column("id").to_pylist() == expected[dt]
        assert table.column("_source_key").to_pylist() == [f"{i}.json" for i in expected[dt]]
        assert {d.isoformat() for d in table.column("date").to_pylist()} == {dt}
    assert pending.size == next_id


def test_a_batch_of_more_interleaved_days_than_sliced_at_once_is_split_whole() -> None:
    """One-object files of a five-year backfill: more days than MAX_SLICED_DAYS, each row
    another day than the row before."""
    days = [(i * 7) % (MAX_SLICED_DAYS + 500) for i in range(3 * (MAX_SLICED_DAYS + 500))]
    pending = UnwrittenRows()
    pending.add_table(batch(0, days, dictionary_sources=False))

    split = dict(pending.by_dt(SCHEMA))

    assert len(split) == MAX_SLICED_DAYS + 500
    assert sum(t.num_rows for t in split.values()) == len(days)
    first_day = split[FIRST.isoformat()].column("id").to_pylist()
    assert first_day == [i for i, d in enumerate(days) if d == 0]
