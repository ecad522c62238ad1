"""The products workload's data floor, in its own small module so the child that times it
imports pyarrow alone (not dagster and the other benchmarks: ~1.6 s a start).

Beside it, and not part of it: the archive's moves of the same files, alone. DESIGN asks that
every landing file be moved to archive/ once its records are placed; the issue's data floor
does not, and for one-object files that is the biggest piece of work left outside both floors.

    python -m benchmarks.products_floor '{"source": DIR, "out": DIR}'
    # prints {"seconds": ..., "archive_seconds": ..., "archive_cpu": ...}
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def products_floor(source: str, out: str) -> dict[str, Any]:
    """Read every small file, parse it, write one snappy Parquet file per day; then, timed
    apart, move every file to another directory of the same file system."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    started = time.perf_counter()
    by_day: dict[str, list[dict[str, Any]]] = {}
    for path in Path(source).iterdir():
        record = json.loads(path.read_bytes())
        by_day.setdefault(record["date"], []).append(record)
    for day, records in by_day.items():
        pq.write_table(pa.Table.from_pylist(records), Path(out) / f"{day}.parquet")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, **archive_moves(source, Path(out) / "archive")}


def archive_moves(source: str, archive: Path) -> dict[str, float]:
    """Each file moved as the local store archives it (a link, then an unlink: a move that
    never overwrites), one thread, nothing else: the kernel's cost of the archive."""
    archive.mkdir()
    names = os.listdir(source)
    started, cpu = time.perf_counter(), time.process_time()
    for name in names:
        os.link(f"{source}/{name}", f"{archive}/{name}")
        os.unlink(f"{source}/{name}")
    return {
        "archive_seconds": time.perf_counter() - started,
        "archive_cpu": time.process_time() - cpu,
    }


if __name__ == "__main__":
    print(json.dumps(products_floor(**json.loads(sys.argv[1]))))
