"""A day's Parquet footer is read without its data: a few KiB of ranged GETs on S3, not the file."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics_pipeline.lake.versioned_days import write_partition
from analytics_pipeline.resources.aws.s3_store import S3LakeStore
from analytics_pipeline.resources.local.store import LocalLakeStore

LAKE = "analytics-lake"
DT = "2024-05-01"


@pytest.fixture
def s3_store(aws: None) -> S3LakeStore:
    store = S3LakeStore(landing_bucket=LAKE, lake_bucket=LAKE)
    store.s3_client().create_bucket(Bucket=LAKE)
    return store


def readings(rows: int) -> pa.Table:
    """Random measures: they do not compress, so the day is megabytes."""
    generator = np.random.default_rng(7)
    return pa.table(
        {
            "deviceid": pa.array(np.arange(rows, dtype=np.int32)),
            "temperature": pa.array(generator.standard_normal(rows)),
            "humidity": pa.array(generator.standard_normal(rows)),
        }
    )


def bytes_fetched(store: S3LakeStore) -> list[int]:
    """The body size of every GetObject the store's client makes from now on."""
    fetched: list[int] = []

    def record(parsed: dict[str, Any], **_: Any) -> None:
        fetched.append(int(parsed.get("ContentLength", 0)))

    store.s3_client().meta.events.register("after-call.s3.GetObject", record)
    return fetched


def test_an_s3_footer_is_read_with_a_small_fraction_of_the_days_bytes(
    s3_store: S3LakeStore,
) -> None:
    written = write_partition(s3_store, "iot", DT, readings(300_000), ("deviceid",))
    whole = pq.read_metadata(pa.BufferReader(s3_store.read_bytes(written.path)))
    fetched = bytes_fetched(s3_store)
    footer = s3_store.parquet_footer(written.path)
    assert footer.equals(whole)
    assert footer.metadata == whole.metadata
    assert written.bytes > 4 * 1024 * 1024
    assert sum(fetched) <= 64 * 1024 < written.bytes / 50
    assert s3_store.size(written.path) == written.bytes


def test_rewriting_an_unchanged_day_on_s3_reads_only_its_footer(s3_store: S3LakeStore) -> None:
    data = readings(300_000)
    first = write_partition(s3_store, "iot", DT, data)
    fetched = bytes_fetched(s3_store)
    again = write_partition(s3_store, "iot", DT, data)
    assert (again.unchanged, again.path, again.bytes) == (True, first.path, first.bytes)
    assert sum(fetched) <= 64 * 1024


def test_a_longer_footer_than_the_first_read_is_read_whole(s3_store: S3LakeStore) -> None:
    # Many columns make a footer longer than pyarrow's first 64 KiB read from the end.
    wide = pa.table({f"c{n}": pa.array([n], pa.int64()) for n in range(2000)})
    s3_store.write_bytes("parquet/wide/one.parquet", _parquet(wide))
    footer = s3_store.parquet_footer("parquet/wide/one.parquet")
    assert footer.serialized_size > 64 * 1024
    assert footer.num_columns == 2000


def test_a_missing_object_raises_file_not_found(s3_store: S3LakeStore) -> None:
    with pytest.raises(FileNotFoundError, match="s3://analytics-lake/parquet/iot/none"):
        s3_store.parquet_footer("parquet/iot/none.parquet")


def test_the_local_footer_is_the_files_footer(store: LocalLakeStore) -> None:
    written = write_partition(store, "iot", DT, readings(1000))
    whole = pq.read_metadata(pa.BufferReader(store.read_bytes(written.path)))
    assert store.parquet_footer(written.path).equals(whole)
    assert store.size(written.path) == written.bytes


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()
