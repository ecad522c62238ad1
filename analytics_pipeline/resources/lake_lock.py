"""One writer per table: the lock every write of a table's days takes, whatever the scheduler.

Two writers of one day would each delete the other's fresh version (a rewrite deletes every
version older than the one it registers) while the catalog may point at it. Dagster's pools
keep runs apart only where the instance is configured for it; this lock lives in the lake
itself, so it holds for every run, every instance and every deployment.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Protocol

# A second writer waits this long for the first, then fails with the holder's name: long
# enough for a backfill of many days, short of hanging a run for ever.
LOCK_WAIT_SECONDS = 30 * 60.0
# Polling starts fast (a turn is often short) and backs off to this.
MAX_POLL_SECONDS = 2.0
_TABLE = re.compile(r"[a-z_][a-z0-9_]{0,127}")


def lock_name(table: str) -> str:
    """The table's name, checked to be safe as the last part of a path or key."""
    if not _TABLE.fullmatch(table):
        raise ValueError(f"invalid table name {table!r} for a lock")
    return table


@dataclass(frozen=True)
class LockHolder:
    """Who holds a table's lock: written into the lock for the next writer's error message."""

    owner: str
    host: str
    pid: int
    since: float  # epoch seconds
    expires: float | None = None  # a lease's end; None for a lock the kernel holds

    @classmethod
    def me(cls, owner: str, expires: float | None = None) -> LockHolder:
        return cls(owner, socket.gethostname(), os.getpid(), time.time(), expires)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> LockHolder | None:
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError):
            return None  # written by an older or foreign holder; still a held lock

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since))
        text = f"{self.owner or 'an unnamed writer'} (pid {self.pid} on {self.host}, since {since}"
        if self.expires is not None:
            text += (
                f", lease expires {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.expires))}"
            )
        return text + ")"


class TableLockTimeout(TimeoutError):
    """Another writer held the table's lock for longer than this writer would wait."""

    def __init__(self, table: str, holder: LockHolder | None, waited: float) -> None:
        who = holder.describe() if holder else "another writer"
        super().__init__(f"table {table} is being written by {who}; gave up after {waited:.0f} s")
        self.table = table
        self.holder = holder


class TableLockLost(RuntimeError):
    """The lease ran out while held (the holder stalled) and another writer took it over."""


class TableLocks(Protocol):
    def table_lock(
        self, table: str, owner: str = "", wait_seconds: float | None = None
    ) -> AbstractContextManager[None]: ...


@contextlib.contextmanager
def table_locks(store: TableLocks, tables: list[str], owner: str = "") -> Iterator[None]:
    """Hold the locks of several tables, taken in sorted order so two writers of the same
    tables cannot each hold one and wait for the other."""
    with contextlib.ExitStack() as stack:
        for table in sorted(set(tables)):
            stack.enter_context(store.table_lock(table, owner))
        yield


def poll_delays(timeout: float) -> Iterator[float]:
    """Sleeps between attempts, doubling from 50 ms up to MAX_POLL_SECONDS, until `timeout`
    seconds have passed (then the iterator ends)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while (left := deadline - time.monotonic()) > 0:
        yield min(delay, left)
        delay = min(delay * 2, MAX_POLL_SECONDS)
