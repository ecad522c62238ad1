"""The lake as a local directory: landing/ staged/ parquet/ quarantine/ archive/."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

import pyarrow.parquet as pq
from pydantic import PrivateAttr

from analytics_pipeline.resources.lake_lock import LOCK_WAIT_SECONDS, lock_name
from analytics_pipeline.resources.local.file_lock import file_lock
from analytics_pipeline.resources.local.landing_directory import LandingDirectory
from analytics_pipeline.resources.store import (
    LAKE_AREAS,
    STREAM_CHUNK_BYTES,
    LakeStore,
    LandingObject,
    LandingObjectGone,
    UnsafePathError,
    safe_relative,
    unless_gone,
)

# Landing files moved to archive at once, and how many a thread moves at a time.
ARCHIVE_WORKERS = 2
ARCHIVE_CHUNK = 512


@functools.cache
def _resolved_root(lake_dir: str) -> str:
    # Resolved once per process: resolving costs an lstat per path component.
    return str(Path(lake_dir).resolve())


class LocalLakeStore(LakeStore):
    """The lake as a directory: landing/ staged/ parquet/ quarantine/ archive/."""

    lake_dir: str
    lock_wait_seconds: float = LOCK_WAIT_SECONDS
    # Landing directories already found to resolve inside the lake.
    _safe_dirs: set[str] = PrivateAttr(default_factory=set)
    # Archive directories this store created or found.
    _made_dirs: set[str] = PrivateAttr(default_factory=set)
    # What each landing file read and not yet archived was when it was read (its path to
    # its file_shape): a file replaced since is left in landing, as S3's ETag check does.
    _read_shapes: dict[str, int] = PrivateAttr(default_factory=dict)

    @property
    def root(self) -> Path:
        return Path(_resolved_root(self.lake_dir))

    def ensure_layout(self) -> None:
        for area in LAKE_AREAS:
            (self.root / area).mkdir(parents=True, exist_ok=True)

    # Paths are plain strings, not pathlib objects: with one object per landing file, the
    # path objects would cost more than the file system calls.

    def _path(self, path: str) -> str:
        return f"{_resolved_root(self.lake_dir)}/{safe_relative(path)}"

    def _landing(self, dataset: str) -> LandingDirectory:
        return LandingDirectory(
            _resolved_root(self.lake_dir),
            safe_relative(f"landing/{dataset}"),
            self._safe_dirs,
            self._read_shapes,
        )

    # landing

    def list_landing(self, dataset: str) -> Iterator[LandingObject]:
        base = self._path(f"landing/{dataset}")
        if not os.path.isdir(base):
            return
        stack = [base]
        while stack:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    # Dot-files are a producer's in-progress uploads (rsync, editors).
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        stat = entry.stat(follow_symlinks=False)
                        key = entry.path[len(base) + 1 :]
                        yield LandingObject(dataset, key, stat.st_size, stat.st_mtime)

    def read_landing(self, dataset: str, key: str, max_bytes: int) -> tuple[bytes, str]:
        """The file's bytes (at most max_bytes + 1) and a content version (md5, like an ETag;
        "" for a file longer than max_bytes)."""
        return self._landing(dataset).read(key, max_bytes)

    def _landing_reader(self, dataset: str) -> Callable[[str, int], tuple[bytes, str]]:
        return self._landing(dataset).read

    def iter_landing(
        self, dataset: str, key: str, chunk_bytes: int = STREAM_CHUNK_BYTES, offset: int = 0
    ) -> Iterator[bytes]:
        landing = self._landing(dataset)
        path = landing.path(key)
        try:
            handle = open(path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            raise LandingObjectGone(f"landing/{dataset}/{key}") from None
        with handle:
            landing.same_as_read(path, key, os.fstat(handle.fileno()))
            handle.seek(offset)
            while chunk := handle.read(chunk_bytes):
                yield chunk

    def landing_size(self, dataset: str, key: str) -> int:
        try:
            return os.stat(self._landing(dataset).path(key)).st_size
        except FileNotFoundError:
            raise LandingObjectGone(f"landing/{dataset}/{key}") from None

    def archive_landing(self, dataset: str, key: str, version: str | None = None) -> str:
        """Move the file to archive/<dataset>/<key>; returns the archive path used.

        A different earlier delivery of the same key already archived keeps its bytes: this
        one goes beside it as <key>~<version>, so no original is ever overwritten.
        """
        return self._landing_archiver(dataset)(key, version)

    def archive_landing_many(
        self, dataset: str, items: list[tuple[str, str | None]]
    ) -> Iterator[tuple[str, str | None]]:
        """In two threads, a chunk of files at a time, yielded in the order given. A move is
        two system calls that release the GIL, and in a directory of 100,000 files they cost
        ~19 us of kernel time each (a rename costs the same): 100,000 moves take 1.6-1.9 s so,
        2.4 s one at a time. Chunks, not a task a file: a task costs what a move does."""
        archive = self._landing_archiver(dataset)

        def move(chunk: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
            return [(key, unless_gone(archive, key, version)) for key, version in chunk]

        if len(items) <= ARCHIVE_CHUNK:
            yield from move(items)
            return
        chunks = [items[i : i + ARCHIVE_CHUNK] for i in range(0, len(items), ARCHIVE_CHUNK)]
        pool = ThreadPoolExecutor(max_workers=ARCHIVE_WORKERS, thread_name_prefix="archive")
        try:
            for moved in pool.map(move, chunks):
                yield from moved
        finally:  # after an error, the chunks not started stay in landing (staged again, once)
            pool.shutdown(cancel_futures=True)

    def _landing_archiver(self, dataset: str) -> Callable[[str, str | None], str]:
        """archive_landing for one dataset, its directories worked out once, not per file."""
        landing = self._landing(dataset)
        landing_dir = f"{landing.root}/{landing.relative}"
        archive_dir = f"{landing.root}/archive/{dataset}"
        made_dirs = self._made_dirs

        def archive(key: str, version: str | None) -> str:
            source = landing.path(key, link_checked_by_open=True)
            try:
                found = os.lstat(source)
            except FileNotFoundError:
                raise LandingObjectGone(f"landing/{dataset}/{key}") from None
            if stat.S_ISLNK(found.st_mode):
                raise UnsafePathError(f"landing/{dataset}/{key} is a link")
            landing.same_as_read(source, key, found, forget=True)
            relative = source[len(landing_dir) + 1 :]
            archive_path = f"archive/{dataset}/{relative}"
            target = f"{archive_dir}/{relative}"
            directory = target.rpartition("/")[0]
            if directory not in made_dirs:  # two syscalls a file saved
                os.makedirs(directory, exist_ok=True)
                made_dirs.add(directory)
            try:
                try:
                    _move_unless_taken(source, target, directory)
                except FileExistsError:  # the same key archived before
                    if version and _md5(target) != version:
                        archive_path = f"{archive_path}~{version[:16]}"
                        target = f"{target}~{version[:16]}"
                    _replace(source, target)
            except FileNotFoundError:
                raise LandingObjectGone(f"landing/{dataset}/{key}") from None
            _prune_empty_dirs(source.rpartition("/")[0], landing_dir)
            return archive_path

        return archive

    # lake objects

    def write_bytes(self, path: str, data: bytes) -> None:
        """Readers see the old object or the new one, never half of one."""
        self.write_stream(path, io.BytesIO(data))

    def write_stream(self, path: str, source: BinaryIO) -> None:
        """Into a hidden temp file beside the target, fsync, then rename over it."""
        target = self._path(path)
        directory, name = os.path.split(target)
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                shutil.copyfileobj(source, handle, STREAM_CHUNK_BYTES)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def copy_file(self, source: str, target: str) -> None:
        """A hard link: lake objects are never written in place (a write renames a new file
        over the name), so the two names keep the same bytes, and deleting one keeps the
        other. A link under a temp name, renamed over the target, as every write does."""
        destination = self._path(target)
        directory, name = os.path.split(destination)
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex}")
        try:
            os.link(self._path(source), tmp)
        except OSError:  # another file system, or one without links
            super().copy_file(source, target)
            return
        os.replace(tmp, destination)

    def read_bytes(self, path: str) -> bytes:
        with open(self._path(path), "rb") as handle:
            return handle.read()

    def iter_bytes(self, path: str, chunk_bytes: int = STREAM_CHUNK_BYTES) -> Iterator[bytes]:
        with open(self._path(path), "rb") as handle:
            while chunk := handle.read(chunk_bytes):
                yield chunk

    def parquet_footer(self, path: str) -> pq.FileMetaData:
        return pq.read_metadata(self._path(path))

    def size(self, path: str) -> int:
        return os.stat(self._path(path)).st_size

    def table_lock(
        self, table: str, owner: str = "", wait_seconds: float | None = None
    ) -> AbstractContextManager[None]:
        """An flock on locks/<table>.lock, outside parquet/ (an Athena table's location must
        hold only its data)."""
        path = self._path(f"locks/{lock_name(table)}.lock")
        wait = self.lock_wait_seconds if wait_seconds is None else wait_seconds
        return file_lock(path, table, owner, wait)

    def exists(self, path: str) -> bool:
        return os.path.exists(self._path(path))

    def list_files(self, prefix: str) -> list[str]:
        """Lake paths of the files under a prefix (a directory), sorted; temp files excluded."""
        base = self._path(prefix)
        if not os.path.isdir(base):
            return []
        skip = len(_resolved_root(self.lake_dir)) + 1
        return sorted(
            os.path.join(directory, name)[skip:]
            for directory, _, names in os.walk(base)
            for name in names
            if not name.startswith(".") and os.path.isfile(os.path.join(directory, name))
        )

    def list_folders(self, prefix: str, depth: int = 1) -> list[str]:
        """Folders on disk, including those holding only a killed write's temp file."""
        base = Path(self._path(prefix))
        if not base.is_dir():
            return []
        pattern = "/".join(["*"] * depth)
        return sorted(str(p.relative_to(base)) for p in base.glob(pattern) if p.is_dir())

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)

    def delete_files(self, paths: list[str]) -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(path))

    def location(self, path: str) -> str:
        """Where a query engine reads the object: an absolute path here, s3:// on AWS."""
        return self._path(path)


def _md5(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _move_unless_taken(source: str, target: str, directory: str) -> None:
    """Move a file to a name nothing holds yet (FileExistsError if something does): a hard
    link then an unlink cost what a rename does, and need no look-up first (0.4 s in 100,000
    files). Where links do not work (another file system), a look-up and a rename."""
    try:
        os.link(source, target, follow_symlinks=False)
    except FileNotFoundError:
        if not os.path.lexists(source):
            raise
        os.makedirs(directory, exist_ok=True)  # removed since this store made it
        os.link(source, target, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError:  # EXDEV, EPERM: no hard link here
        if os.path.lexists(target):
            raise FileExistsError(target) from None
        os.replace(source, target)
        return
    os.unlink(source)


def _replace(source: str, target: str) -> None:
    """Rename over the target; if both names are one file already (a move cut short between
    its link and its unlink), drop the source name: rename would leave both in place."""
    try:
        same = os.path.samestat(os.lstat(source), os.lstat(target))
    except FileNotFoundError:
        same = False
    if same:
        os.unlink(source)
    else:
        os.replace(source, target)


def _prune_empty_dirs(directory: str, stop: str) -> None:
    while directory != stop and directory.startswith(f"{stop}/"):
        try:
            os.rmdir(directory)
        except OSError:
            return
        directory = os.path.dirname(directory)
