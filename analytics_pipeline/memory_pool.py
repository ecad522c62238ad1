"""Arrow's allocator for the processes that ingest: a choice for entry points, not for importers."""

import os

import pyarrow as pa


def use_system_memory_pool() -> None:
    """Allocate Arrow memory from glibc's malloc unless ARROW_DEFAULT_MEMORY_POOL chose a pool.

    Arrow's default pool (mimalloc) gives freed pages back to the OS at once, and the next
    file's tables fault them in again: half the IoT ingest's system time, 0.4 s of its wall
    time on 2 cores (benchmarks/README.md). glibc's malloc keeps them for reuse. This changes
    the whole process, so only entry points call it; importing the package changes nothing.
    """
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        pa.set_memory_pool(pa.system_memory_pool())
