"""A serverless analytics lake on Dagster: landing JSON -> staged -> Parquet -> catalog -> SQL."""

import os

import pyarrow as pa

# Arrow's default pool (mimalloc) gives freed pages back to the OS at once, and the next
# file's tables fault them in again: half the IoT ingest's system time, 0.4 s of its wall
# time on 2 cores (benchmarks/README.md). glibc's malloc keeps them for reuse. A pool chosen
# with ARROW_DEFAULT_MEMORY_POOL is left alone.
if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
    pa.set_memory_pool(pa.system_memory_pool())
