"""The object store interface: landing files in, lake objects out (local/ and aws/ implement it)."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from analytics_pipeline.lake.landing_objects import (
    STREAM_CHUNK_BYTES,
    LandingObjectGone,
    content_version,
)
from analytics_pipeline.run_owner import name_run_owner

LAKE_AREAS = ("landing", "staged", "parquet", "quarantine", "archive")

T = TypeVar("T")


@dataclass(frozen=True)
class LandingObject:
    """A landing file as a listing sees it; `signature` changes when its content may have."""

    dataset: str
    key: str  # relative to landing/<dataset>/
    size: int
    modified: float

    signature: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Set once: a sensor tick reads it for every one of 100,000 listed files.
        object.__setattr__(self, "signature", f"{self.key}:{self.size}:{self.modified:.6f}")


def whole_version(data: bytes, max_bytes: int) -> str:
    """The content version of a read of at most max_bytes + 1 bytes: "" if it was cut off
    (a file that big is streamed, and its version taken as it streams)."""
    return content_version(data) if len(data) <= max_bytes else ""


def unless_gone(act: Callable[..., T], *args: Any) -> T | None:
    """act(*args), or None if the landing object it acts on is already gone."""
    try:
        return act(*args)
    except LandingObjectGone:
        return None


class UnsafePathError(ValueError):
    """A key or path that would leave the lake."""


_UNSAFE_PARTS = frozenset(("..", ".", ""))


def safe_relative(path: str) -> str:
    """A relative POSIX path with no '..', '.', empty or absolute parts (one trailing / is ok).

    Plain string checks, no path objects: this runs several times per landing file.
    """
    path = path.removesuffix("/")
    if (
        not path
        or path.startswith("/")
        or "\x00" in path
        or not _UNSAFE_PARTS.isdisjoint(path.split("/"))
    ):
        raise UnsafePathError(f"unsafe key or path {path!r}")
    return path


class LakeStore(dg.ConfigurableResource):
    """What the assets need of an object store. Paths are lake-relative ('staged/x/...')."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Every step that touches the lake starts here: the run names the process that
        # runs it, so a dead-run check on its machine can tell when it was killed.
        if context.instance is not None and context.run_id is not None:
            name_run_owner(context.instance, context.run_id)

    def ensure_layout(self) -> None:
        raise NotImplementedError

    def list_landing(self, dataset: str) -> Iterator[LandingObject]:
        raise NotImplementedError

    def read_landing(self, dataset: str, key: str, max_bytes: int) -> tuple[bytes, str]:
        """The object's bytes (at most max_bytes + 1) and its content version (the md5 of
        the bytes); "" when the object is longer than max_bytes (it was not read whole)."""
        raise NotImplementedError

    def read_landing_many(
        self, dataset: str, keys: list[str], max_bytes: int
    ) -> Iterator[tuple[str, tuple[bytes, str] | None]]:
        """(key, (bytes, version)) in the order given; None for a key already gone.

        One at a time here; a remote store overlaps the reads (many small objects are
        dominated by round trips, not bytes).
        """
        read = self._landing_reader(dataset)
        for key in keys:
            yield key, unless_gone(read, key, max_bytes)

    def _landing_reader(self, dataset: str) -> Callable[[str, int], tuple[bytes, str]]:
        """read_landing for one dataset; a store may work out what the dataset shares once."""
        return functools.partial(self.read_landing, dataset)

    def iter_landing(
        self, dataset: str, key: str, chunk_bytes: int = STREAM_CHUNK_BYTES, offset: int = 0
    ) -> Iterator[bytes]:
        """The landing object's bytes from `offset` on as they stream in, at most chunk_bytes
        at a time.

        For files too big to hold. Each call reads the object afresh; on a remote
        store every call after read_landing reads the same object version as it did, or
        raises LandingObjectGone (the object was replaced or removed meanwhile).
        """
        raise NotImplementedError

    def archive_landing(self, dataset: str, key: str, version: str | None = None) -> str:
        raise NotImplementedError

    def archive_landing_many(
        self, dataset: str, items: list[tuple[str, str | None]]
    ) -> Iterator[tuple[str, str | None]]:
        """archive_landing for each (key, version): (key, archive path, or None if the file
        was gone), in the order given. One at a time here; a remote store overlaps them."""
        archive = self._landing_archiver(dataset)
        for key, version in items:
            yield key, unless_gone(archive, key, version)

    def _landing_archiver(self, dataset: str) -> Callable[[str, str | None], str]:
        """archive_landing for one dataset; a store may work out what the dataset shares once."""
        return functools.partial(self.archive_landing, dataset)

    def write_landing(self, dataset: str, key: str, data: bytes) -> None:
        """Deliver a landing file as a producer would (whole, or not at all). Here the
        landing dir sits in the lake; a remote store writes to its landing bucket."""
        self.write_bytes(f"landing/{dataset}/{safe_relative(key)}", data)

    def write_bytes(self, path: str, data: bytes) -> None:
        raise NotImplementedError

    def write_stream(self, path: str, source: BinaryIO) -> None:
        """Write an object from a file-like source, read a piece at a time (as atomically as
        write_bytes). Here whole; stores override it to keep memory bounded."""
        self.write_bytes(path, source.read())

    def copy_file(self, source: str, target: str) -> None:
        """A new lake object with the bytes of another (as atomically as write_bytes). Here
        streamed through this process; stores override with a copy that moves no bytes."""
        self.write_stream(target, io.BufferedReader(_ChunkStream(self.iter_bytes(source))))

    def iter_bytes(self, path: str, chunk_bytes: int = STREAM_CHUNK_BYTES) -> Iterator[bytes]:
        """A lake object's bytes, at most chunk_bytes at a time. Here whole; stores override."""
        yield self.read_bytes(path)

    def read_bytes(self, path: str) -> bytes:
        raise NotImplementedError

    def parquet_footer(self, path: str) -> pq.FileMetaData:
        """A Parquet object's footer (row count, schema, key-value metadata), read without
        its data pages. Here from the whole object; stores override."""
        return pq.read_metadata(pa.BufferReader(self.read_bytes(path)))

    def size(self, path: str) -> int:
        """An object's size in bytes. Here by reading it; stores override."""
        return len(self.read_bytes(path))

    def table_lock(
        self, table: str, owner: str = "", wait_seconds: float | None = None
    ) -> AbstractContextManager[None]:
        """Held by every writer of the table's days for the whole write (new version, catalog
        change, deletion of the old ones): one writer per table, whatever schedules the runs.
        Waits for another holder, up to wait_seconds (default lock_wait_seconds), then raises
        TableLockTimeout."""
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def delete_files(self, paths: list[str]) -> None:
        """Delete these lake objects; a missing one is not an error."""
        raise NotImplementedError

    def list_files(self, prefix: str) -> list[str]:
        raise NotImplementedError

    def list_folders(self, prefix: str, depth: int = 1) -> list[str]:
        """Folders `depth` levels under a prefix ("a/b" for depth 2), sorted, relative to it.
        Here those holding a file; a store with hidden temp files also lists folders of those."""
        return sorted(
            {
                "/".join(parts[:depth])
                for path in self.list_files(prefix)
                if len(parts := path[len(prefix) :].split("/")) > depth
            }
        )

    def delete_prefix(self, prefix: str) -> None:
        raise NotImplementedError

    def location(self, path: str) -> str:
        """Where a query engine or catalog finds the object (a local path or an s3:// URI)."""
        raise NotImplementedError


class _ChunkStream(io.RawIOBase):
    """A readable stream over byte chunks: a copy never holds the whole object."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n
