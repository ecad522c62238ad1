"""The (key, dt) index of an incremental source table: an update reads only the days it
touches, and an index left stale by a crash heals from the lake instead of misplacing rows."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics_pipeline.cli.samples.movie_rental import create_movie_rental
from analytics_pipeline.datasets.movie_rental import MOVIE_RENTAL
from analytics_pipeline.lake import source_extract
from analytics_pipeline.lake.day_spill import DaySpill
from analytics_pipeline.lake.key_index import index_path
from analytics_pipeline.lake.source_extract import extract_and_serve
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.resources.source_database import SourceDatabase
from analytics_pipeline_tests.test_database_source import execute, lake_rows, source_rows

END = date(2026, 11, 30)


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'source.sqlite'}"
    create_movie_rental(url, end_date=END, days=5, scale=0.3)
    return url


@pytest.fixture
def source(url: str) -> SourceDatabase:
    return SourceDatabase(source="movie_rental", url=url, batch_rows=20)


def extract_rental(store: LocalLakeStore, catalog: DuckDBCatalog, source: SourceDatabase) -> None:
    extract_and_serve(store, catalog, source, MOVIE_RENTAL, "rental")


def days_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The lake day files the extract reads from now on."""
    read: list[str] = []
    original = source_extract._read_day

    def counting(store: Any, path: str, *args: Any) -> pa.Table:
        read.append(next(part for part in path.split("/") if part.startswith("dt=")))
        return original(store, path, *args)

    monkeypatch.setattr(source_extract, "_read_day", counting)
    return read


def test_an_update_reads_only_the_days_it_touches(
    url: str,
    store: LocalLakeStore,
    catalog: DuckDBCatalog,
    source: SourceDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extract_rental(store, catalog, source)
    assert len(catalog.partitions("rental")) == 5
    # Every other row out of the cursor's look-back, so the next read is this update alone.
    execute(url, "UPDATE rental SET last_update = :old", old=datetime(2026, 1, 1))
    execute(
        url,
        "UPDATE rental SET rental_date = :day, last_update = :now WHERE rental_id = 1",
        day=datetime(2026, 11, 29, 8),
        now=datetime(2026, 12, 5),
    )
    read = days_read(monkeypatch)
    extract_rental(store, catalog, source)
    # its old day (the first) and its new one: not the other three
    assert sorted(read) == ["dt=2026-11-26", "dt=2026-11-29"]
    ids = [row[0] for row in lake_rows(catalog, "rental")]
    assert ids.count(1) == 1 and len(ids) == len(source_rows(url, "rental"))


def test_a_crash_before_the_index_is_saved_heals_from_the_lake(
    url: str,
    store: LocalLakeStore,
    catalog: DuckDBCatalog,
    source: SourceDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extract_rental(store, catalog, source)
    execute(
        url,
        "UPDATE rental SET rental_date = :day, last_update = :now WHERE rental_id = 2",
        day=datetime(2026, 11, 30, 8),
        now=datetime(2026, 12, 5),
    )

    def crash(*args: Any) -> None:
        raise KeyboardInterrupt("killed after publishing")

    monkeypatch.setattr(source_extract, "save_key_index", crash)
    with pytest.raises(KeyboardInterrupt):
        extract_rental(store, catalog, source)
    monkeypatch.undo()
    # The stale index still puts rental 2 on its first day; the lake has it on the 30th,
    # a day that nothing else read next touches.
    execute(url, "UPDATE rental SET last_update = :old", old=datetime(2026, 1, 1))
    execute(
        url,
        "UPDATE rental SET rental_date = :day, last_update = :now WHERE rental_id = 2",
        day=datetime(2026, 11, 27, 9),
        now=datetime(2026, 12, 6),
    )
    execute(url, "DELETE FROM payment WHERE rental_id = 4")
    execute(url, "DELETE FROM rental WHERE rental_id = 4")
    extract_rental(store, catalog, source)
    ids = [row[0] for row in lake_rows(catalog, "rental")]
    assert sorted(ids) == [row[0] for row in source_rows(url, "rental")]  # each once, 4 gone
    index = pq.read_table(store.root / index_path("movie_rental", "rental"))
    assert sorted(index.column("rental_id").to_pylist()) == [
        r[0] for r in source_rows(url, "rental")
    ]


@pytest.mark.parametrize(
    ("held_bytes", "files"),
    [(0, 3), (4 * 4, 2), (1 << 20, 0)],  # three flushes: all on disk; the first held; all held
)
def test_spilled_rows_come_back_by_day_each_once(
    tmp_path: Path, held_bytes: int, files: int
) -> None:
    schema = pa.schema([("id", pa.int32())])
    spill = DaySpill(tmp_path, schema, buffer_rows=3, held_bytes=held_bytes)  # several flushes
    days = [date(2026, 1, 1 + i % 3) for i in range(10)]
    for start in range(0, 10, 4):
        ids = pa.array(range(start, min(start + 4, 10)), pa.int32())
        spill.add(pa.record_batch([ids], schema=schema), pa.array(days[start : start + 4]))
    spill.flush()
    assert spill.days() == set(days)
    for day in set(days):
        expected = [i for i in range(10) if days[i] == day]
        assert sorted(spill.rows(day).column("id").to_pylist()) == expected
    assert spill.rows(date(2026, 2, 1)).num_rows == 0
    assert len(list(tmp_path.glob("spill-*.arrow"))) == files


@given(
    rows=st.lists(st.one_of(st.none(), st.integers(-5, 5)), max_size=30),
    keys=st.lists(st.one_of(st.none(), st.integers(-5, 5)), max_size=10),
    join=st.sampled_from(["left semi", "left anti"]),
)
def test_a_day_finds_its_replaced_rows_as_the_hash_join_does(
    rows: list[int | None], keys: list[int | None], join: str
) -> None:
    """A day's rows are looked up in a set of keys, not joined: the same rows, nulls included
    (a null key matches nothing)."""
    day = pa.table(
        {"id": pa.array(rows, pa.int32()), "row": pa.array(range(len(rows)), pa.int64())}
    )
    replaced = pa.table({"id": pa.array(keys, pa.int64())})
    looked_up = source_extract._by_key(day, replaced, ("id",), join)
    joined = day.join(replaced.cast(pa.schema([("id", pa.int32())])), ["id"], join_type=join)
    assert sorted(looked_up.column("row").to_pylist()) == sorted(joined.column("row").to_pylist())
