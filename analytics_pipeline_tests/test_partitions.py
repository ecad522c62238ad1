"""Daily partitions: safe keys, versioned snappy Parquet, and clean-up of replaced versions."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics_pipeline.datasets import dataset
from analytics_pipeline.lake.versioned_days import (
    delete_older_versions,
    duplicated_keys,
    duplicated_keys_in_footer,
    validate_dt,
    versions,
    write_partition,
)
from analytics_pipeline.resources.local.store import LocalLakeStore

IOT = dataset("iot_sensor_data")
IOT_SCHEMA = IOT.table_arrow_schema(IOT.tables[0])
DT = "2024-05-01"
_ASCII_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def readings(*devices: int) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "deviceid": d,
                "datetime": datetime(2024, 5, 1, 10, 30, 15, 123000),
                "temperature": 20,
                "humidity": 50,
                "winddirection": 180,
                "windintensity": 3,
                "rainheight": 0,
            }
            for d in devices
        ],
        schema=IOT_SCHEMA,
    )


def is_real_date(text: str) -> bool:
    if not _ASCII_DATE.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


# validate_dt


@pytest.mark.parametrize("value", ["2020-01-01", "2024-02-29", "1999-12-31"])
def test_validate_dt_accepts_real_dates(value: str):
    assert validate_dt(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "2020-02-30",
        "2023-02-29",
        "2020-13-01",
        "2020-01-01'; DROP TABLE x; --",
        "../x",
        "2020-01-01/../../x",
        "2020-1-1",
        "20200101",
        "2020-01-01\n",
        " 2020-01-01",
        "",
    ],
)
def test_validate_dt_rejects_anything_else(value: str):
    with pytest.raises(ValueError, match="invalid partition key"):
        validate_dt(value)


@given(st.dates())
def test_validate_dt_accepts_every_iso_date(value: date):
    assert validate_dt(value.isoformat()) == value.isoformat()


@given(
    st.one_of(
        st.text(),
        st.from_regex(r"\d{4}-\d{2}-\d{2}", fullmatch=True),
        st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}.?", fullmatch=True),
    ).filter(lambda text: not is_real_date(text))
)
def test_validate_dt_rejects_any_text_that_is_not_a_real_date(value: str):
    with pytest.raises(ValueError):
        validate_dt(value)


# write_partition


def test_write_partition_writes_a_version_under_the_day(store: LocalLakeStore):
    written = write_partition(store, "iot_sensor_data", DT, readings(1, 2))

    assert re.fullmatch(
        r"parquet/iot_sensor_data/dt=2024-05-01/[^/]+/part-00000\.snappy\.parquet", written.path
    )
    assert not written.unchanged
    assert written.rows == 2
    assert store.list_files("parquet/iot_sensor_data/") == [written.path]
    assert pq.read_table(store.location(written.path)).equals(readings(1, 2))


def test_partition_parquet_is_snappy_with_int64_millisecond_timestamps(
    store: LocalLakeStore,
):
    written = write_partition(store, "iot_sensor_data", DT, readings(1))

    metadata = pq.read_metadata(store.location(written.path))
    column = metadata.schema.column(metadata.schema.names.index("datetime"))
    assert column.physical_type == "INT64"
    assert column.logical_type.type == "TIMESTAMP"
    assert '"timeUnit":"milliseconds"' in column.logical_type.to_json()
    physical_types = {metadata.schema.column(i).physical_type for i in range(metadata.num_columns)}
    assert "INT96" not in physical_types
    compressions = {
        metadata.row_group(g).column(c).compression
        for g in range(metadata.num_row_groups)
        for c in range(metadata.num_columns)
    }
    assert compressions == {"SNAPPY"}


def test_writing_identical_data_again_is_unchanged_and_writes_nothing(
    lake_dir: Path, store: LocalLakeStore
):
    first = write_partition(store, "iot_sensor_data", DT, readings(1, 2))
    mtime = (lake_dir / first.path).stat().st_mtime_ns

    again = write_partition(store, "iot_sensor_data", DT, readings(1, 2))

    assert again.unchanged
    assert again.path == first.path
    assert again.digest == first.digest
    assert store.list_files("parquet/iot_sensor_data/") == [first.path]
    assert (lake_dir / first.path).stat().st_mtime_ns == mtime


def test_writing_different_data_writes_a_new_version(store: LocalLakeStore):
    first = write_partition(store, "iot_sensor_data", DT, readings(1))

    second = write_partition(store, "iot_sensor_data", DT, readings(1, 2))

    assert not second.unchanged
    assert second.path != first.path
    assert versions(store, "iot_sensor_data", DT) == [first.path, second.path]


def test_delete_older_versions_keeps_the_registered_and_newer_versions(store: LocalLakeStore):
    oldest = write_partition(store, "iot_sensor_data", DT, readings(1))
    registered = write_partition(store, "iot_sensor_data", DT, readings(2))
    newer = write_partition(store, "iot_sensor_data", DT, readings(3))

    removed = delete_older_versions(store, "iot_sensor_data", DT, keep=registered.path)

    assert removed == [oldest.path]
    assert versions(store, "iot_sensor_data", DT) == [registered.path, newer.path]
    assert store.list_files("parquet/iot_sensor_data/") == [registered.path, newer.path]


def test_versions_of_one_day_leave_other_days_alone(store: LocalLakeStore):
    other_day = write_partition(store, "iot_sensor_data", "2024-05-02", readings(1))
    old = write_partition(store, "iot_sensor_data", DT, readings(1))
    new = write_partition(store, "iot_sensor_data", DT, readings(2))

    delete_older_versions(store, "iot_sensor_data", DT, keep=new.path)

    assert versions(store, "iot_sensor_data", "2024-05-02") == [other_day.path]
    assert old.path not in store.list_files("parquet/iot_sensor_data/")


@pytest.mark.parametrize("table", ["../etc", "Products", "a b", "x;drop", ""])
def test_write_partition_rejects_unsafe_table_names(store: LocalLakeStore, table: str):
    with pytest.raises(ValueError, match="invalid table or column name"):
        write_partition(store, table, DT, readings(1))


@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 3)),
            st.sampled_from(["a", "b", None]),
            st.integers(0, 2),
        ),
        max_size=40,
    ),
    st.booleans(),
)
def test_duplicated_keys_counts_what_sql_group_by_counts(rows: list[tuple], nulls: bool) -> None:
    schema = pa.schema([("k1", pa.int32()), ("k2", pa.string()), ("t", pa.timestamp("ms"))])
    data = pa.table(
        {
            "k1": [r[0] if nulls or r[0] is not None else 9 for r in rows],
            "k2": [r[1] for r in rows],
            "t": [datetime(2024, 5, 1, r[2]) for r in rows],
        },
        schema=schema,
    )
    con = duckdb.connect()
    for key in (("k1", "k2"), ("k1", "t"), ("t",)):  # ("k1", "t") without nulls: sorted
        columns = ", ".join(key)
        [(expected,)] = con.execute(
            f"SELECT count(*) FROM (SELECT {columns} FROM data "
            f"GROUP BY {columns} HAVING count(*) > 1)"
        ).fetchall()
        assert duplicated_keys(data, key) == expected
    con.close()


def test_a_keyed_day_records_its_duplicated_keys_and_the_rows_they_were_counted_on(
    store: LocalLakeStore,
):
    written = write_partition(store, "iot", DT, readings(1, 2, 2, 3, 3, 3), ("deviceid",))
    footer = pq.read_metadata(store.root / written.path)
    assert duplicated_keys_in_footer(footer) == 2
    # Rewritten by a tool that kept the footer's metadata: the count no longer holds.
    table = pq.read_table(store.root / written.path)
    pq.write_table(pa.concat_tables([table, table]), store.root / written.path)
    assert duplicated_keys_in_footer(pq.read_metadata(store.root / written.path)) is None
    unkeyed = write_partition(store, "iot", "2024-05-02", readings(1, 1))
    assert duplicated_keys_in_footer(pq.read_metadata(store.root / unkeyed.path)) is None
