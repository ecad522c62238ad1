"""The products workload's data floor, in its own small module so the child that times it
imports pyarrow alone (not dagster and the other benchmarks: ~1.6 s a start).

    python -m benchmarks.products_floor '{"source": DIR, "out": DIR}'   # prints {"seconds": ...}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def products_floor(source: str, out: str) -> dict[str, Any]:
    """Read every small file, parse it, write one snappy Parquet file per day."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    started = time.perf_counter()
    by_day: dict[str, list[dict[str, Any]]] = {}
    for path in Path(source).iterdir():
        record = json.loads(path.read_bytes())
        by_day.setdefault(record["date"], []).append(record)
    for day, records in by_day.items():
        pq.write_table(pa.Table.from_pylist(records), Path(out) / f"{day}.parquet")
    return {"seconds": time.perf_counter() - started}


if __name__ == "__main__":
    print(json.dumps(products_floor(**json.loads(sys.argv[1]))))
