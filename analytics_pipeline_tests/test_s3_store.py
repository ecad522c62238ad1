"""The S3 lake store under moto: LocalLakeStore's semantics, plus what S3 adds (pagination,
bounded streaming reads, multipart uploads, server-side copies, retries, concurrent GETs)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries.bucket import TokenBucket

from analytics_pipeline.datasets import dataset
from analytics_pipeline.lake.compaction import compact_day
from analytics_pipeline.lake.staging import stage_landing_files
from analytics_pipeline.lake.versioned_days import write_partition
from analytics_pipeline.resources.aws.s3_store import S3LakeStore, S3StoreError
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.resources.store import (
    LakeStore,
    LandingObjectGone,
    UnsafePathError,
)
from analytics_pipeline_tests.lake_helpers import drop, ndjson

LANDING = "analytics-landing"
LAKE = "analytics-lake"
MiB = 1024 * 1024


@pytest.fixture
def s3_store(aws: None) -> S3LakeStore:
    store = S3LakeStore(landing_bucket=LANDING, lake_bucket=LAKE)
    client = store.s3_client()
    client.create_bucket(Bucket=LANDING)
    client.create_bucket(Bucket=LAKE)
    return store


def put_landing(store: S3LakeStore, dataset_name: str, key: str, body: bytes | str) -> None:
    data = body.encode() if isinstance(body, str) else body
    store.s3_client().put_object(Bucket=LANDING, Key=f"landing/{dataset_name}/{key}", Body=data)


def bucket_keys(store: S3LakeStore, bucket: str) -> list[str]:
    pages = store.s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def count_calls(store: S3LakeStore) -> Counter[str]:
    """Every S3 API call the store's client makes from now on, by operation name."""
    calls: Counter[str] = Counter()

    def record(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    store.s3_client().meta.events.register("before-call.s3", record)
    return calls


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


# buckets and paths


def test_ensure_layout_names_a_missing_bucket(aws: None):
    store = S3LakeStore(landing_bucket=LANDING, lake_bucket="no-such-lake")
    store.s3_client().create_bucket(Bucket=LANDING)

    with pytest.raises(S3StoreError, match="HeadBucket s3://no-such-lake/"):
        store.ensure_layout()


def test_ensure_layout_passes_when_both_buckets_exist(s3_store: S3LakeStore):
    s3_store.ensure_layout()


def test_location_is_an_s3_uri_in_the_lake_bucket(s3_store: S3LakeStore):
    assert (
        s3_store.location("parquet/t/dt=2024-05-01/v1/part-00000.snappy.parquet")
        == f"s3://{LAKE}/parquet/t/dt=2024-05-01/v1/part-00000.snappy.parquet"
    )


@pytest.mark.parametrize("path", ["../x", "/abs", "a/../b", "a//b", "nul\x00"])
def test_every_method_refuses_an_unsafe_path(s3_store: S3LakeStore, path: str):
    calls = count_calls(s3_store)
    for call in (
        lambda: s3_store.read_bytes(path),
        lambda: s3_store.write_bytes(path, b"x"),
        lambda: s3_store.exists(path),
        lambda: s3_store.list_files(path),
        lambda: s3_store.delete_prefix(path),
        lambda: s3_store.location(path),
        lambda: s3_store.read_landing("products", path, 10),
        lambda: s3_store.archive_landing("products", path),
    ):
        with pytest.raises(UnsafePathError):
            call()
    assert calls == {}  # refused before any request


# lake objects


def test_write_bytes_below_the_threshold_is_one_put(s3_store: S3LakeStore):
    calls = count_calls(s3_store)

    s3_store.write_bytes("staged/x/a.bin", b"old")
    s3_store.write_bytes("staged/x/a.bin", b"new")

    assert s3_store.read_bytes("staged/x/a.bin") == b"new"
    assert calls["PutObject"] == 2 and calls["CreateMultipartUpload"] == 0


def test_copy_file_is_a_server_side_copy_and_leaves_the_source(s3_store: S3LakeStore):
    calls = count_calls(s3_store)
    s3_store.write_bytes("staged/x/a.parquet", b"day")

    s3_store.copy_file("staged/x/a.parquet", "parquet/x/v1/a.parquet")
    assert calls["CopyObject"] == 1 and calls["GetObject"] == 0  # no byte left the bucket
    s3_store.delete_files(["staged/x/a.parquet"])

    assert s3_store.read_bytes("parquet/x/v1/a.parquet") == b"day"


def test_write_bytes_above_the_threshold_is_a_multipart_upload(aws: None):
    store = S3LakeStore(
        landing_bucket=LANDING,
        lake_bucket=LAKE,
        multipart_threshold_bytes=6 * MiB,
        multipart_chunk_bytes=5 * MiB,
    )
    store.s3_client().create_bucket(Bucket=LAKE)
    data = bytes(range(256)) * (12 * MiB // 256)
    calls = count_calls(store)

    store.write_bytes("parquet/t/dt=2024-05-01/v1/part-00000.snappy.parquet", data)

    assert store.read_bytes("parquet/t/dt=2024-05-01/v1/part-00000.snappy.parquet") == data
    assert calls["CreateMultipartUpload"] == 1
    assert calls["UploadPart"] == 3  # 5 + 5 + 2 MiB
    assert calls["CompleteMultipartUpload"] == 1
    assert calls["PutObject"] == 0


def test_read_bytes_of_a_missing_object_raises_file_not_found_naming_it(s3_store: S3LakeStore):
    with pytest.raises(FileNotFoundError, match=f"s3://{LAKE}/staged/missing.parquet"):
        s3_store.read_bytes("staged/missing.parquet")


def test_exists_sees_objects_and_directories_like_the_local_store(s3_store: S3LakeStore):
    s3_store.write_bytes("quarantine/products/a.jsonl", b"{}\n")

    assert s3_store.exists("quarantine/products/a.jsonl")
    assert s3_store.exists("quarantine/products")
    assert not s3_store.exists("quarantine/products/b.jsonl")
    assert not s3_store.exists("quarantine/prod")  # a prefix of a name is no directory


def test_list_files_is_sorted_paged_and_skips_dot_names_and_markers(aws: None):
    store = S3LakeStore(landing_bucket=LANDING, lake_bucket=LAKE, list_page_size=100)
    client = store.s3_client()
    client.create_bucket(Bucket=LAKE)
    for i in reversed(range(250)):
        client.put_object(Bucket=LAKE, Key=f"staged/t/dt=2024-05-01/{i:04d}.parquet", Body=b"")
    client.put_object(Bucket=LAKE, Key="staged/t/dt=2024-05-01/.upload.tmp", Body=b"")
    client.put_object(Bucket=LAKE, Key="staged/t/dt=2024-05-01/sub/", Body=b"")
    client.put_object(Bucket=LAKE, Key="staged/tt/other.parquet", Body=b"")
    calls = count_calls(store)

    listed = store.list_files("staged/t/")

    assert listed == [f"staged/t/dt=2024-05-01/{i:04d}.parquet" for i in range(250)]
    assert calls["ListObjectsV2"] == 3
    assert store.list_files("staged/missing/") == []


def test_delete_prefix_deletes_only_under_the_directory_in_chunks_of_1000(
    s3_store: S3LakeStore,
):
    client = s3_store.s3_client()
    for i in range(1001):
        client.put_object(Bucket=LAKE, Key=f"parquet/t/dt=2024-05-01/v1/{i:04d}", Body=b"")
    client.put_object(Bucket=LAKE, Key="parquet/t/dt=2024-05-01/v10/keep", Body=b"")
    calls = count_calls(s3_store)

    s3_store.delete_prefix("parquet/t/dt=2024-05-01/v1")

    assert bucket_keys(s3_store, LAKE) == ["parquet/t/dt=2024-05-01/v10/keep"]
    assert calls["DeleteObjects"] == 2
    s3_store.delete_prefix("parquet/t/dt=2024-05-02/")  # nothing there: no error


def test_delete_files_deletes_exactly_the_paths_given_in_chunks_of_1000(s3_store: S3LakeStore):
    client = s3_store.s3_client()
    paths = [f"staged/x/dt=2024-05-01/{i:04d}.parquet" for i in range(2001)]
    for path in [*paths, "staged/x/dt=2024-05-01/kept.parquet"]:
        client.put_object(Bucket=LAKE, Key=path, Body=b"")
    calls = count_calls(s3_store)

    s3_store.delete_files(paths)
    s3_store.delete_files([])  # nothing to delete: no call

    assert bucket_keys(s3_store, LAKE) == ["staged/x/dt=2024-05-01/kept.parquet"]
    assert calls["DeleteObjects"] == 3


# landing


def test_list_landing_lists_nested_keys_and_skips_dot_names_and_markers(
    s3_store: S3LakeStore,
):
    put_landing(s3_store, "products", "1.json", "{}")
    put_landing(s3_store, "products", "2024/05/01/2.json", "{}")
    put_landing(s3_store, "products", ".3.json.uploading", "{}")
    put_landing(s3_store, "products", "2024/.partial/4.json", "{}")
    put_landing(s3_store, "products", "2024/05/", "")
    put_landing(s3_store, "products_v2", "5.json", "{}")

    listed = {obj.key: obj for obj in s3_store.list_landing("products")}

    assert sorted(listed) == ["1.json", "2024/05/01/2.json"]
    assert listed["1.json"].size == 2
    assert listed["1.json"].dataset == "products"
    assert listed["1.json"].modified > 0


def test_list_landing_pages_through_the_whole_prefix(aws: None):
    store = S3LakeStore(landing_bucket=LANDING, lake_bucket=LAKE, list_page_size=100)
    client = store.s3_client()
    client.create_bucket(Bucket=LANDING)
    for i in range(250):
        client.put_object(Bucket=LANDING, Key=f"landing/products/{i:05d}.json", Body=b"{}")
    calls = count_calls(store)

    keys = [obj.key for obj in store.list_landing("products")]

    assert len(keys) == len(set(keys)) == 250
    assert calls["ListObjectsV2"] == 3


def test_a_landing_signature_changes_with_the_content_size(s3_store: S3LakeStore):
    put_landing(s3_store, "products", "1.json", "{}")
    [before] = s3_store.list_landing("products")
    put_landing(s3_store, "products", "1.json", '{"id": 1}')
    [after] = s3_store.list_landing("products")

    assert before.signature != after.signature


def test_read_landing_streams_at_most_max_bytes_plus_one(s3_store: S3LakeStore):
    data = bytes(range(256)) * (5 * MiB // 256)
    put_landing(s3_store, "iot_sensor_data", "big.ndjson", data)

    read, version = s3_store.read_landing("iot_sensor_data", "big.ndjson", 1 * MiB)

    assert read == data[: 1 * MiB + 1]
    assert version == ""  # not read whole: no content version


def test_read_landing_version_is_the_md5_of_the_content_like_the_local_store(
    s3_store: S3LakeStore, tmp_path: Path
):
    put_landing(s3_store, "products", "a.json", b"0123456789")
    drop(tmp_path, "products", "a.json", b"0123456789")
    local = LocalLakeStore(lake_dir=str(tmp_path))

    assert s3_store.read_landing("products", "a.json", 100) == local.read_landing(
        "products", "a.json", 100
    )
    assert s3_store.read_landing("products", "a.json", 4) == local.read_landing(
        "products", "a.json", 4
    )


def test_landing_calls_on_a_vanished_object_raise_landing_object_gone(s3_store: S3LakeStore):
    with pytest.raises(LandingObjectGone):
        s3_store.read_landing("products", "gone.json", 100)
    with pytest.raises(LandingObjectGone):
        s3_store.archive_landing("products", "gone.json")


def test_read_landing_many_returns_500_objects_in_the_order_asked(s3_store: S3LakeStore):
    keys = [f"{i:04d}.json" for i in range(500)]
    for key in keys:
        put_landing(s3_store, "products", key, key)
    asked = list(reversed(keys)) + ["gone.json"]
    calls = count_calls(s3_store)

    results = list(s3_store.read_landing_many("products", asked, 100))

    assert [key for key, _ in results] == asked
    assert all(fetched == (key.encode(), md5(key.encode())) for key, fetched in results[:-1])
    assert results[-1] == ("gone.json", None)
    assert calls["GetObject"] == 501


def test_read_landing_many_reads_at_most_twice_the_concurrency_ahead(
    aws: None, monkeypatch: pytest.MonkeyPatch
):
    store = S3LakeStore(landing_bucket=LANDING, lake_bucket=LAKE, max_concurrency=4)
    store.s3_client().create_bucket(Bucket=LANDING)
    for i in range(50):
        put_landing(store, "products", f"{i:02d}.json", "{}")
    submitted: list[int] = []

    class CountingPool(ThreadPoolExecutor):
        def submit(self, *args: Any, **kwargs: Any) -> Any:
            submitted.append(1)
            return super().submit(*args, **kwargs)

    monkeypatch.setattr(
        "analytics_pipeline.resources.aws.read_ahead.ThreadPoolExecutor", CountingPool
    )
    reads = store.read_landing_many("products", [f"{i:02d}.json" for i in range(50)], 100)

    next(reads)
    after_one = len(submitted)
    for _ in range(9):
        next(reads)
    after_ten = len(submitted)
    rest = list(reads)

    assert (after_one, after_ten) == (2 * 4 + 1, 2 * 4 + 10)
    assert len(rest) == 40 and len(submitted) == 50


def test_archive_landing_copies_server_side_then_deletes_the_landing_object(
    s3_store: S3LakeStore,
):
    put_landing(s3_store, "products", "a/b/c.json", "c")
    put_landing(s3_store, "products", "a/d.json", "d")
    calls = count_calls(s3_store)

    archived = s3_store.archive_landing("products", "a/b/c.json")
    made = dict(calls)

    assert archived == "archive/products/a/b/c.json"
    assert s3_store.read_bytes(archived) == b"c"
    assert bucket_keys(s3_store, LANDING) == ["landing/products/a/d.json"]
    # The bytes never pass through this process: no GET, no PUT.
    assert made == {"HeadObject": 2, "CopyObject": 1, "DeleteObject": 1}


def test_archive_landing_many_archives_concurrently_in_the_order_given(s3_store: S3LakeStore):
    keys = [f"{i:03d}.json" for i in range(200)]
    for key in keys:
        put_landing(s3_store, "products", key, key)
    put_landing(s3_store, "products", "kept.json", "kept")
    asked = [(key, md5(key.encode())) for key in reversed(keys)] + [("gone.json", None)]
    threads: set[str] = set()
    archive = S3LakeStore.archive_landing

    def recorded(self: S3LakeStore, *args: Any) -> str:
        threads.add(threading.current_thread().name)
        return archive(self, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(S3LakeStore, "archive_landing", recorded)
        results = list(s3_store.archive_landing_many("products", asked))

    assert results == [(key, f"archive/products/{key}") for key, _ in asked[:-1]] + [
        ("gone.json", None)
    ]
    assert bucket_keys(s3_store, LANDING) == ["landing/products/kept.json"]
    assert s3_store.read_bytes("archive/products/007.json") == b"007.json"
    assert len(threads) > 1  # not one after another


def test_archive_landing_of_a_large_object_is_a_multipart_server_side_copy(aws: None):
    store = S3LakeStore(
        landing_bucket=LANDING,
        lake_bucket=LAKE,
        multipart_threshold_bytes=6 * MiB,
        multipart_chunk_bytes=5 * MiB,
    )
    store.s3_client().create_bucket(Bucket=LANDING)
    store.s3_client().create_bucket(Bucket=LAKE)
    data = b"x" * (11 * MiB)
    put_landing(store, "web_requests", "big.log", data)
    _, version = store.read_landing("web_requests", "big.log", 20 * MiB)
    calls = count_calls(store)

    archived = store.archive_landing("web_requests", "big.log", version)

    assert calls["UploadPartCopy"] == 3 and calls["CopyObject"] == 0 and calls["GetObject"] == 0
    assert store.read_bytes(archived) == data
    # The multipart ETag is no md5; the archived copy still knows its content version.
    put_landing(store, "web_requests", "big.log", data)
    assert store.archive_landing("web_requests", "big.log", version) == archived


def test_a_redelivered_key_with_new_content_never_overwrites_the_archived_original(
    s3_store: S3LakeStore,
):
    put_landing(s3_store, "products", "1.json", "first")
    _, first_version = s3_store.read_landing("products", "1.json", 100)
    assert (
        s3_store.archive_landing("products", "1.json", first_version) == "archive/products/1.json"
    )
    put_landing(s3_store, "products", "1.json", "second")
    _, second_version = s3_store.read_landing("products", "1.json", 100)
    archived = s3_store.archive_landing("products", "1.json", second_version)

    assert archived == f"archive/products/1.json~{second_version[:16]}"
    assert s3_store.read_bytes("archive/products/1.json") == b"first"
    assert s3_store.read_bytes(archived) == b"second"
    # The same content again simply replaces its identical copy.
    put_landing(s3_store, "products", "1.json", "first")
    _, again = s3_store.read_landing("products", "1.json", 100)
    assert s3_store.archive_landing("products", "1.json", again) == "archive/products/1.json"


def test_an_object_replaced_after_it_was_read_is_neither_archived_nor_deleted(
    s3_store: S3LakeStore,
):
    put_landing(s3_store, "products", "1.json", "read")
    _, version = s3_store.read_landing("products", "1.json", 100)
    put_landing(s3_store, "products", "1.json", "arrived since")

    with pytest.raises(LandingObjectGone, match="replaced since it was read"):
        s3_store.archive_landing("products", "1.json", version)

    assert bucket_keys(s3_store, LAKE) == []
    assert s3_store.read_landing("products", "1.json", 100)[0] == b"arrived since"


def test_the_second_of_two_racing_archivers_finds_the_object_gone(s3_store: S3LakeStore):
    put_landing(s3_store, "products", "1.json", "x")
    other = S3LakeStore(landing_bucket=LANDING, lake_bucket=LAKE)
    other.archive_landing("products", "1.json")

    with pytest.raises(LandingObjectGone):
        s3_store.archive_landing("products", "1.json")


# retries and errors


def _error_response(status: int, code: str) -> AWSResponse:
    body = f"<Error><Code>{code}</Code><Message>injected {code}</Message></Error>".encode()
    raw = SimpleNamespace(stream=lambda **_: iter([body]))
    return AWSResponse("https://s3.amazonaws.com", status, {}, raw)


def inject_errors(
    store: S3LakeStore, operation: str, status: int, code: str, times: int
) -> list[int]:
    """The next `times` calls of the operation answer this error before reaching moto."""
    sent: list[int] = []

    def answer(**_: Any) -> AWSResponse | None:
        sent.append(1)
        return _error_response(status, code) if len(sent) <= times else None

    store.s3_client().meta.events.register_first(f"before-send.s3.{operation}", answer)
    return sent


@dataclass
class Backoff:
    slept: list[float] = field(default_factory=list)  # botocore's backoff between attempts
    rate_limited: list[float] = field(default_factory=list)  # adaptive mode's client-side waits


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> Backoff:
    """Record botocore's waits instead of waiting them (no sleeps in tests)."""
    record = Backoff()
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=record.slept.append))

    def acquire(bucket: TokenBucket, amount: float = 1, block: bool = True) -> bool:
        record.rate_limited.append(max(0.0, amount - bucket.available_capacity))
        return True

    monkeypatch.setattr(TokenBucket, "acquire", acquire)
    return record


@pytest.mark.parametrize(
    ("status", "code", "throttle"), [(503, "SlowDown", True), (500, "InternalError", False)]
)
def test_throttling_and_server_errors_are_retried_until_the_read_succeeds(
    s3_store: S3LakeStore, backoff: Backoff, status: int, code: str, throttle: bool
):
    put_landing(s3_store, "products", "1.json", "{}")
    sent = inject_errors(s3_store, "GetObject", status, code, times=4)

    assert s3_store.read_landing("products", "1.json", 100)[0] == b"{}"
    assert len(sent) == 5
    assert len(backoff.slept) == 4  # botocore backed off before each retry
    # Adaptive mode: only a throttling error switches on the client-side rate limiter.
    assert bool(backoff.rate_limited) is throttle


def test_a_permanent_access_denied_fails_naming_the_bucket_and_key(
    s3_store: S3LakeStore, backoff: Backoff
):
    put_landing(s3_store, "products", "1.json", "{}")
    sent = inject_errors(s3_store, "GetObject", 403, "AccessDenied", times=100)

    with pytest.raises(S3StoreError, match=f"s3://{LANDING}/landing/products/1.json.*AccessDenied"):
        s3_store.read_landing("products", "1.json", 100)
    assert len(sent) == 1  # not retried


def test_throttling_that_outlasts_the_retries_fails_naming_the_bucket_and_key(
    s3_store: S3LakeStore, backoff: Backoff
):
    s3_store.write_bytes("staged/x.parquet", b"x")
    sent = inject_errors(s3_store, "GetObject", 503, "SlowDown", times=100)

    with pytest.raises(S3StoreError, match=f"s3://{LAKE}/staged/x.parquet.*SlowDown"):
        s3_store.read_bytes("staged/x.parquet")
    assert len(sent) == 11  # the first attempt and botocore's max_attempts=10 retries


# the real pipeline steps against S3


NOW = datetime(2024, 6, 1, 12)
START = date(2020, 1, 1)


def reading(deviceid: int, when: str) -> dict[str, Any]:
    values = dict.fromkeys(("temperature", "humidity", "winddirection", "windintensity"), "1")
    return {"deviceid": str(deviceid), "datetime": when, "rainheight": "0", **values}


LANDED = {
    "2024/05/01/a.ndjson": ndjson([reading(1, "2024-05-01 10:00:00"), reading(2, "2024-05-02 1")]),
    "2024/05/01/b.ndjson": ndjson([reading(3, "2024-05-01 11:00:00")]) + "{not json\n",
}


def run_pipeline_steps(store: LakeStore) -> tuple[list[str], pa.Table]:
    spec = dataset("iot_sensor_data")
    report = stage_landing_files(
        store, spec, sorted(LANDED), start=START, now=NOW, max_file_bytes=1 * MiB
    )
    day = compact_day(store, spec, spec.tables[0], "2024-05-01")
    written = write_partition(store, spec.tables[0].name, "2024-05-01", day.table)
    stored = pq.read_table(pa.BufferReader(store.read_bytes(written.path)))
    assert (report.staged, report.rejected) == (2, 2)
    return report.staged_paths + report.quarantine_paths, stored


def test_staging_and_compaction_on_s3_leave_the_same_lake_as_locally(
    s3_store: S3LakeStore, tmp_path: Path
):
    local = LocalLakeStore(lake_dir=str(tmp_path))
    local.ensure_layout()
    for key, content in LANDED.items():
        put_landing(s3_store, "iot_sensor_data", key, content)
        drop(tmp_path, "iot_sensor_data", key, content)

    s3_paths, s3_table = run_pipeline_steps(s3_store)
    local_paths, local_table = run_pipeline_steps(local)

    assert s3_paths == local_paths
    assert s3_table.equals(local_table)
    assert s3_table.num_rows == 2
    assert bucket_keys(s3_store, LANDING) == []
    lake = bucket_keys(s3_store, LAKE)
    assert [k for k in lake if k.startswith("archive/")] == [
        "archive/iot_sensor_data/2024/05/01/a.ndjson",
        "archive/iot_sensor_data/2024/05/01/b.ndjson",
    ]
    local_lake = sorted(
        p for area in ("staged", "quarantine", "archive") for p in local.list_files(area)
    )
    assert [k for k in lake if not k.startswith("parquet/")] == local_lake
    assert len([k for k in lake if k.startswith("parquet/")]) == 1
    for path in local_paths:
        if path.startswith("quarantine/"):
            local_lines = [json.loads(x) for x in local.read_bytes(path).splitlines()]
            assert [json.loads(x) for x in s3_store.read_bytes(path).splitlines()] == local_lines


def test_iter_landing_streams_the_version_read_and_refuses_a_replaced_one(
    s3_store: S3LakeStore,
):
    data = b"".join(b'{"n": %d}\n' % i for i in range(5000))
    put_landing(s3_store, "iot_sensor_data", "big.ndjson", data)
    head, _ = s3_store.read_landing("iot_sensor_data", "big.ndjson", 100)
    chunks = list(s3_store.iter_landing("iot_sensor_data", "big.ndjson", chunk_bytes=1000))
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= 1000
    # From an offset (the rest after the head already read), and from the very end.
    rest = s3_store.iter_landing("iot_sensor_data", "big.ndjson", offset=len(head))
    assert head + b"".join(rest) == data
    assert list(s3_store.iter_landing("iot_sensor_data", "big.ndjson", offset=len(data))) == []
    put_landing(s3_store, "iot_sensor_data", "big.ndjson", data + b"{}\n")  # replaced
    with pytest.raises(LandingObjectGone):
        list(s3_store.iter_landing("iot_sensor_data", "big.ndjson"))


def test_write_stream_iter_bytes_and_delete_files_round_trip(s3_store: S3LakeStore):
    import io

    data = bytes(range(256)) * 1000
    s3_store.write_stream("quarantine/x/a.jsonl", io.BytesIO(data))
    assert b"".join(s3_store.iter_bytes("quarantine/x/a.jsonl", chunk_bytes=4096)) == data
    s3_store.delete_files(["quarantine/x/a.jsonl", "quarantine/x/missing.jsonl"])
    assert not s3_store.exists("quarantine/x/a.jsonl")
