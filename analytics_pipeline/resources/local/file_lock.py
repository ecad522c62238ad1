"""The local table lock: an flock on a file in the lake, which the kernel drops when the
holder dies, however it dies."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator

from analytics_pipeline.resources.lake_lock import LockHolder, TableLockTimeout, poll_delays


@contextlib.contextmanager
def file_lock(path: str, table: str, owner: str, timeout: float) -> Iterator[None]:
    """An exclusive flock on `path`, held until the block ends. The kernel drops it when the
    process dies, however it dies, so a killed run never leaves a table locked."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        started = time.monotonic()
        delays = poll_delays(timeout)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                delay = next(delays, None)
                if delay is None:
                    holder = _read_holder(path)
                    raise TableLockTimeout(table, holder, time.monotonic() - started) from None
                time.sleep(delay)
        os.ftruncate(fd, 0)
        os.pwrite(fd, LockHolder.me(owner).to_json().encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # no stale holder for the next one's message
    finally:
        os.close(fd)  # releases the flock


def _read_holder(path: str) -> LockHolder | None:
    try:
        with open(path, "rb") as handle:
            return LockHolder.from_json(handle.read())
    except FileNotFoundError:
        return None
