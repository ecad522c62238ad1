"""One dataset's landing files in the local lake: their safe paths, and reads that remember
what each file was when it was read, so the archive can refuse a file replaced since."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from analytics_pipeline.resources.store import (
    LandingObjectGone,
    UnsafePathError,
    safe_relative,
    whole_version,
)


@dataclass
class LandingDirectory:
    """Paths of one dataset's landing files, refused if they resolve outside the lake: a key
    names what a producer dropped, and a symlink under landing/ must not lead a run (which
    reads, then moves, the file) out of ANALYTICS_LAKE_DIR. Each directory is resolved once
    per store (`safe_dirs`); the file itself must not be a link."""

    root: str
    relative: str  # landing/<dataset>
    safe_dirs: set[str]
    read_shapes: dict[str, int]

    def path(self, key: str, *, link_checked_by_open: bool = False) -> str:
        path = f"{self.root}/{self.relative}/{safe_relative(key)}"
        directory = path.rpartition("/")[0]
        if directory not in self.safe_dirs:
            if not os.path.realpath(directory).startswith(f"{self.root}/"):
                raise UnsafePathError(f"{self.relative}/{key} resolves outside the lake")
            self.safe_dirs.add(directory)
        if not link_checked_by_open and os.path.islink(path):
            raise UnsafePathError(f"{self.relative}/{key} is a link")
        return path

    def read(self, key: str, max_bytes: int) -> tuple[bytes, str]:
        """The file's bytes (at most max_bytes + 1) and content version, as read_landing."""
        path = self.path(key, link_checked_by_open=True)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise LandingObjectGone(f"{self.relative}/{key}") from None
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise UnsafePathError(f"{self.relative}/{key} is a link") from None
            raise
        try:
            found = os.fstat(fd)
            data = read_up_to(fd, found.st_size, max_bytes + 1)
        finally:
            os.close(fd)
        self.read_shapes[path] = file_shape(found)
        return data, whole_version(data, max_bytes)

    def same_as_read(
        self, path: str, key: str, found: os.stat_result, *, forget: bool = False
    ) -> None:
        """LandingObjectGone if the file was replaced or rewritten since this store read it:
        what is there now was never staged, so it must stay in landing for the next run. A
        file not read yet is remembered as it is now (unless forgotten), as S3 keeps ETags."""
        shape = file_shape(found)
        if forget:
            read = self.read_shapes.pop(path, shape)
        else:
            read = self.read_shapes.setdefault(path, shape)
        if read != shape:
            raise LandingObjectGone(f"{self.relative}/{key} was replaced since it was read")


def file_shape(found: os.stat_result) -> int:
    """A file's inode, size and mtime, as one number: a rename over the name gives another
    inode, a rewrite in place another size or mtime. Not the ctime: a hard link (a move to
    the archive cut short) changes it, not the content."""
    return hash((found.st_ino, found.st_size, found.st_mtime_ns))


def read_up_to(fd: int, size: int, limit: int) -> bytes:
    """At most `limit` bytes of an open file of `size` bytes (by fstat): a read of `limit`
    bytes would allocate all of them first (the limit is large, the files mostly small)."""
    data = os.read(fd, min(size + 1, limit))
    if len(data) == size < limit:
        # All fstat promised, and not the byte asked for beyond it: the end (one system call a
        # file saved). A short read that stops before the size (some network and FUSE file
        # systems) reads on below.
        return data
    parts = [data]
    got = len(data)
    # Usually at the end now; the file may have grown since fstat. Small reads to find out.
    while got < limit and (chunk := os.read(fd, min(64 * 1024, limit - got))):
        parts.append(chunk)
        got += len(chunk)
    return data if len(parts) == 1 else b"".join(parts)
