"""The local object store: keys that stay inside the lake, atomic writes, landing listings."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from pathlib import Path

import pytest

from analytics_pipeline.resources.local import store as local_store
from analytics_pipeline.resources.local.landing_directory import read_up_to
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.resources.store import (
    LandingObjectGone,
    UnsafePathError,
    safe_relative,
)
from analytics_pipeline_tests.lake_helpers import drop


@pytest.mark.parametrize(
    "path", ["../x", "/abs", "a/../b", "", "a//b", "a/\x00/b", "nul\x00", ".", "a/./b", "/"]
)
def test_safe_relative_rejects_paths_that_could_leave_the_lake(path: str):
    with pytest.raises(UnsafePathError, match="unsafe key or path"):
        safe_relative(path)


@pytest.mark.parametrize(
    ("path", "parts"),
    [("a", ("a",)), ("a/b/c.json", ("a", "b", "c.json")), ("staged/x/", ("staged", "x"))],
)
def test_safe_relative_accepts_plain_relative_paths(path: str, parts: tuple[str, ...]):
    assert tuple(safe_relative(path).split("/")) == parts


def test_store_refuses_to_read_outside_the_lake(tmp_path: Path, store: LocalLakeStore):
    (tmp_path / "secret").write_text("s")
    with pytest.raises(UnsafePathError):
        store.read_bytes("../secret")
    with pytest.raises(UnsafePathError):
        store.read_landing("products", "../../../secret", 100)


def test_write_bytes_replaces_the_object_and_leaves_no_temp_file(
    lake_dir: Path, store: LocalLakeStore
):
    store.write_bytes("staged/x/a.bin", b"old")
    store.write_bytes("staged/x/a.bin", b"new")

    assert store.read_bytes("staged/x/a.bin") == b"new"
    assert [p.name for p in (lake_dir / "staged" / "x").iterdir()] == ["a.bin"]


def test_a_failed_write_keeps_the_old_object_and_removes_its_temp_file(
    lake_dir: Path, store: LocalLakeStore, monkeypatch: pytest.MonkeyPatch
):
    store.write_bytes("staged/x/a.bin", b"old")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("analytics_pipeline.resources.local.store.os.fsync", disk_full)
    with pytest.raises(OSError):
        store.write_bytes("staged/x/a.bin", b"new content")
    monkeypatch.undo()

    assert store.read_bytes("staged/x/a.bin") == b"old"
    assert [p.name for p in (lake_dir / "staged" / "x").iterdir()] == ["a.bin"]


def test_copy_file_is_a_second_name_that_outlives_the_first(lake_dir: Path, store: LocalLakeStore):
    store.write_bytes("staged/x/dt=2026-01-01/v1/part.parquet", b"day")

    store.copy_file(
        "staged/x/dt=2026-01-01/v1/part.parquet", "parquet/x/dt=2026-01-01/v1/p.parquet"
    )
    store.write_bytes("staged/x/dt=2026-01-01/v1/part.parquet", b"a later write")
    store.delete_prefix("staged/x")

    assert store.read_bytes("parquet/x/dt=2026-01-01/v1/p.parquet") == b"day"
    assert [p.name for p in (lake_dir / "parquet/x/dt=2026-01-01/v1").iterdir()] == ["p.parquet"]


def test_list_files_never_lists_a_temp_dot_file(lake_dir: Path, store: LocalLakeStore):
    store.write_bytes("parquet/t/dt=2024-05-01/v1/part-00000.snappy.parquet", b"x")
    half = lake_dir / "parquet" / "t" / "dt=2024-05-01" / "v2" / ".part-00000.snappy.parquet.abc"
    half.parent.mkdir(parents=True)
    half.write_bytes(b"half")

    assert store.list_files("parquet/t/") == [
        "parquet/t/dt=2024-05-01/v1/part-00000.snappy.parquet"
    ]
    assert store.list_files("parquet/missing/") == []


def test_list_landing_lists_nested_keys_and_ignores_dot_files(
    lake_dir: Path, store: LocalLakeStore
):
    drop(lake_dir, "products", "1.json", "{}")
    drop(lake_dir, "products", "2024/05/01/2.json", "{}")
    drop(lake_dir, "products", ".3.json.uploading", "{}")
    drop(lake_dir, "products", "2024/.partial/4.json", "{}")
    drop(lake_dir, "iot_sensor_data", "other.ndjson", "{}")

    listed = {obj.key: obj for obj in store.list_landing("products")}

    assert sorted(listed) == ["1.json", "2024/05/01/2.json"]
    assert listed["1.json"].size == 2
    assert listed["1.json"].dataset == "products"


def test_list_landing_of_a_dataset_with_no_landing_dir_is_empty(store: LocalLakeStore):
    assert list(store.list_landing("never_seen")) == []


def test_a_landing_signature_changes_with_the_content_size(lake_dir: Path, store: LocalLakeStore):
    drop(lake_dir, "products", "1.json", "{}")
    [before] = store.list_landing("products")
    drop(lake_dir, "products", "1.json", '{"id": 1}')
    [after] = store.list_landing("products")

    assert before.signature != after.signature


def test_read_landing_returns_a_content_version_and_at_most_max_plus_one_bytes(
    lake_dir: Path, store: LocalLakeStore
):
    drop(lake_dir, "products", "a.json", b"0123456789")
    drop(lake_dir, "products", "b.json", b"0123456789")

    data, version = store.read_landing("products", "a.json", 4)
    _, same = store.read_landing("products", "b.json", 100)
    _, whole = store.read_landing("products", "a.json", 100)

    assert data == b"01234"
    assert whole == same  # the version is the content's, not the key's
    assert version == ""  # a read cut off at the limit has no version: the file is not whole


@pytest.mark.parametrize("size", [0, 1, 65_535, 65_536, 200_000])
@pytest.mark.parametrize("limit", [1, 65_536, 150_001, 1 << 30])
def test_a_landing_read_reads_on_past_the_size_it_was_told_up_to_its_limit(size: int, limit: int):
    """A pipe reports size 0, as a file does that grows after fstat: the read goes on."""
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    read_end, write_end = os.pipe()

    def write() -> None:
        with contextlib.suppress(BrokenPipeError), open(write_end, "wb") as pipe:
            pipe.write(data)  # the reader stops at its limit and closes its end

    writer = threading.Thread(target=write)
    writer.start()
    try:
        got = read_up_to(read_end, os.fstat(read_end).st_size, limit)
    finally:
        os.close(read_end)
        writer.join()

    assert got == data[:limit]


def test_a_landing_file_is_read_in_one_call_and_whole_through_short_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A file read to the size fstat gave needs no read that finds the end; a file system
    that hands back less than asked before the end (some network and FUSE mounts) is read
    on to its end, never cut short."""
    path = tmp_path / "f.json"
    data = bytes(range(256)) * 40
    path.write_bytes(data)
    sizes: list[int] = []
    read = os.read

    def counted(fd: int, n: int) -> bytes:
        sizes.append(n)
        return read(fd, n)

    monkeypatch.setattr(os, "read", counted)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert read_up_to(fd, len(data), 1 << 20) == data
    finally:
        os.close(fd)
    assert sizes == [len(data) + 1]

    monkeypatch.setattr(os, "read", lambda fd, n: read(fd, max(1, n // 3)))
    fd = os.open(path, os.O_RDONLY)
    try:
        assert read_up_to(fd, len(data), 1 << 20) == data
    finally:
        os.close(fd)


def test_landing_calls_on_a_vanished_file_raise_landing_object_gone(store: LocalLakeStore):
    with pytest.raises(LandingObjectGone):
        store.read_landing("products", "gone.json", 100)
    with pytest.raises(LandingObjectGone):
        store.landing_size("products", "gone.json")
    with pytest.raises(LandingObjectGone):
        store.archive_landing("products", "gone.json")


def _rename_over(path: Path, content: str) -> None:
    """A producer's redelivery: a new file renamed over the name (another inode)."""
    fresh = path.with_name(f".{path.name}.tmp")
    fresh.write_text(content)
    os.replace(fresh, path)


@pytest.mark.parametrize(
    "replace",
    [_rename_over, lambda path, content: path.write_text(content)],
    ids=["renamed over", "rewritten in place"],
)
def test_a_landing_file_replaced_since_it_was_read_is_neither_archived_nor_moved(
    lake_dir: Path, store: LocalLakeStore, replace
):
    """What is there now was never staged: it stays in landing for the next run, as the S3
    store's ETag check leaves it."""
    path = drop(lake_dir, "products", "1.json", "read")
    _, version = store.read_landing("products", "1.json", 100)
    replace(path, "arrived since")

    with pytest.raises(LandingObjectGone, match="1.json was replaced since it was read"):
        store.archive_landing("products", "1.json", version)

    assert path.read_text() == "arrived since"
    assert not (lake_dir / "archive" / "products" / "1.json").exists()
    # Read again, it is what the next run stages, and archived.
    _, again = store.read_landing("products", "1.json", 100)
    assert store.archive_landing("products", "1.json", again) == "archive/products/1.json"
    assert (lake_dir / "archive" / "products" / "1.json").read_text() == "arrived since"


def test_archive_landing_many_names_a_file_replaced_since_it_was_read_gone(
    lake_dir: Path, store: LocalLakeStore
):
    paths = [drop(lake_dir, "products", f"{i}.json", f"body {i}") for i in range(3)]
    versions = [store.read_landing("products", f"{i}.json", 100)[1] for i in range(3)]
    _rename_over(paths[1], "arrived since")

    results = list(
        store.archive_landing_many("products", [(f"{i}.json", v) for i, v in enumerate(versions)])
    )

    assert results == [
        ("0.json", "archive/products/0.json"),
        ("1.json", None),
        ("2.json", "archive/products/2.json"),
    ]
    assert [p.name for p in (lake_dir / "landing" / "products").iterdir()] == ["1.json"]


def test_a_landing_file_replaced_between_its_head_and_its_stream_is_not_streamed(
    lake_dir: Path, store: LocalLakeStore
):
    """A big file is read in two goes, its head then the rest: the rest must be of the
    same file, or the staged rows would mix two deliveries."""
    path = drop(lake_dir, "iot_sensor_data", "big.ndjson", "first delivery\n" * 100)
    store.read_landing("iot_sensor_data", "big.ndjson", 10)
    _rename_over(path, "second delivery\n" * 100)

    with pytest.raises(LandingObjectGone, match="replaced since it was read"):
        list(store.iter_landing("iot_sensor_data", "big.ndjson", offset=11))

    # Streamed with no read before (another run): the file as the stream opened it is what
    # is archived.
    other = LocalLakeStore(lake_dir=str(lake_dir))
    second = b"".join(other.iter_landing("iot_sensor_data", "big.ndjson"))
    _rename_over(path, "third delivery\n" * 100)
    with pytest.raises(LandingObjectGone, match="replaced since it was read"):
        other.archive_landing("iot_sensor_data", "big.ndjson")
    assert second == b"second delivery\n" * 100


def test_archive_landing_many_archives_in_the_order_given_and_names_the_gone(
    lake_dir: Path, store: LocalLakeStore
):
    drop(lake_dir, "products", "a/1.json", "one")
    drop(lake_dir, "products", "2.json", "two")
    (lake_dir / "archive" / "products").mkdir(parents=True)
    (lake_dir / "archive" / "products" / "2.json").write_text("an earlier delivery")
    two_version = store.read_landing("products", "2.json", 100)[1]

    results = list(
        store.archive_landing_many(
            "products", [("2.json", two_version), ("gone.json", None), ("a/1.json", None)]
        )
    )

    assert results == [
        ("2.json", f"archive/products/2.json~{two_version[:16]}"),
        ("gone.json", None),
        ("a/1.json", "archive/products/a/1.json"),
    ]
    assert (lake_dir / "archive" / "products" / "2.json").read_text() == "an earlier delivery"
    assert list((lake_dir / "landing" / "products").iterdir()) == []  # a/ pruned


def test_archive_landing_many_in_threads_keeps_the_order_the_gone_and_every_byte(
    lake_dir: Path, store: LocalLakeStore, monkeypatch: pytest.MonkeyPatch
):
    """Chunks of files are moved by two threads: the results still come in the order given,
    directories emptied by either thread are pruned, and no file is lost or overwritten."""
    monkeypatch.setattr(local_store, "ARCHIVE_CHUNK", 3)
    keys = [f"d{i % 4}/{i}.json" for i in range(40)]
    for key in keys:
        drop(lake_dir, "products", key, f"body of {key}")
    (lake_dir / "archive" / "products" / "d1").mkdir(parents=True)
    (lake_dir / "archive" / "products" / "d1" / "5.json").write_text("an earlier delivery")
    version = store.read_landing("products", "d1/5.json", 100)[1]
    asked = [(key, version if key == "d1/5.json" else None) for key in keys]
    asked.insert(17, ("gone.json", None))

    results = list(store.archive_landing_many("products", asked))

    expected = {key: f"archive/products/{key}" for key in keys}
    expected["d1/5.json"] = f"archive/products/d1/5.json~{version[:16]}"
    expected["gone.json"] = None
    assert results == [(key, expected[key]) for key, _ in asked]
    for key in keys:
        assert (lake_dir / expected[key]).read_text() == f"body of {key}"
    assert (lake_dir / "archive/products/d1/5.json").read_text() == "an earlier delivery"
    assert list((lake_dir / "landing" / "products").iterdir()) == []


def test_archive_landing_many_stops_at_a_refused_file_and_loses_none(
    tmp_path: Path, lake_dir: Path, store: LocalLakeStore, monkeypatch: pytest.MonkeyPatch
):
    """A link in landing stops the archiving with its error; every file is then in landing
    or in the archive, whole (what stays in landing is staged again, once)."""
    monkeypatch.setattr(local_store, "ARCHIVE_CHUNK", 2)
    keys = [f"{i}.json" for i in range(12)]
    for key in keys:
        drop(lake_dir, "products", key, key)
    (tmp_path / "outside.json").write_text("outside")
    (lake_dir / "landing/products/link.json").symlink_to(tmp_path / "outside.json")

    with pytest.raises(UnsafePathError, match="link.json is a link"):
        list(
            store.archive_landing_many(
                "products", [(k, None) for k in [*keys[:6], "link.json", *keys[6:]]]
            )
        )

    for key in keys:
        places = [lake_dir / area / "products" / key for area in ("landing", "archive")]
        assert [p.read_text() for p in places if p.exists()] == [key]
    assert (tmp_path / "outside.json").read_text() == "outside"


def test_archive_landing_keeps_the_key_path_and_prunes_only_emptied_directories(
    lake_dir: Path, store: LocalLakeStore
):
    drop(lake_dir, "products", "a/b/c.json", "c")
    drop(lake_dir, "products", "a/d.json", "d")

    store.archive_landing("products", "a/b/c.json")

    assert (lake_dir / "archive" / "products" / "a" / "b" / "c.json").read_text() == "c"
    assert not (lake_dir / "landing" / "products" / "a" / "b").exists()
    assert (lake_dir / "landing" / "products" / "a" / "d.json").exists()


@pytest.fixture(params=["hard links", "no hard links"])
def archiving_links(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Archiving moves by link and unlink, or, where the file system has no hard links
    (another device, some network mounts), by rename."""
    if request.param == "no hard links":

        def refuse(*args: object, **kwargs: object) -> None:
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(os, "link", refuse)
    return str(request.param)


def test_a_redelivered_key_with_new_content_never_overwrites_the_archived_original(
    lake_dir: Path, store: LocalLakeStore, archiving_links: str
) -> None:
    drop(lake_dir, "products", "1.json", "first")
    _, first_version = store.read_landing("products", "1.json", 100)
    assert store.archive_landing("products", "1.json", first_version) == "archive/products/1.json"
    drop(lake_dir, "products", "1.json", "second")
    _, second_version = store.read_landing("products", "1.json", 100)
    archived = store.archive_landing("products", "1.json", second_version)
    assert archived == f"archive/products/1.json~{second_version[:16]}"
    assert (lake_dir / "archive/products/1.json").read_text() == "first"
    assert (lake_dir / archived).read_text() == "second"
    # The same content again simply replaces its identical copy.
    drop(lake_dir, "products", "1.json", "first")
    assert store.archive_landing("products", "1.json", first_version) == "archive/products/1.json"
    assert not (lake_dir / "landing/products/1.json").exists()


def test_a_file_left_in_landing_and_archive_by_a_crash_mid_move_is_archived_again(
    lake_dir: Path, store: LocalLakeStore
) -> None:
    drop(lake_dir, "products", "1.json", "first")
    _, version = store.read_landing("products", "1.json", 100)
    (lake_dir / "archive/products").mkdir(parents=True)
    os.link(lake_dir / "landing/products/1.json", lake_dir / "archive/products/1.json")

    assert store.archive_landing("products", "1.json", version) == "archive/products/1.json"
    assert (lake_dir / "archive/products/1.json").read_text() == "first"
    assert list((lake_dir / "landing/products").iterdir()) == []


def test_a_landing_key_that_is_a_link_or_under_a_linked_directory_is_refused(
    tmp_path: Path, store: LocalLakeStore
):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"id": 1}')
    landing = store.root / "landing" / "products"
    landing.mkdir(parents=True)
    (landing / "file-link.json").symlink_to(outside / "secret.json")
    (landing / "dir-link").symlink_to(outside)

    for key in ("file-link.json", "dir-link/secret.json"):
        with pytest.raises(UnsafePathError):
            store.read_landing("products", key, 1 << 20)
        with pytest.raises(UnsafePathError):
            store.archive_landing("products", key)
    assert (outside / "secret.json").read_text() == '{"id": 1}'


def test_archiving_survives_the_archive_directory_being_removed_meanwhile(
    lake_dir: Path, store: LocalLakeStore
):
    import shutil

    drop(lake_dir, "products", "a.json", b"{}")
    drop(lake_dir, "products", "b.json", b"{}")
    store.archive_landing("products", "a.json")
    shutil.rmtree(lake_dir / "archive" / "products")  # an operator tidying up, say
    assert store.archive_landing("products", "b.json") == "archive/products/b.json"
    assert (lake_dir / "archive" / "products" / "b.json").read_bytes() == b"{}"
    with pytest.raises(LandingObjectGone):
        store.archive_landing("products", "b.json")  # gone from landing: said so
