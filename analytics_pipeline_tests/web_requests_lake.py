"""A local lake whose `web_requests` table holds the rows a test names, published as the
pipeline publishes a day: real Parquet under a version folder, registered in the catalog."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from analytics_pipeline.datasets.table_def import table_def
from analytics_pipeline.datasets.web_requests import WEB_REQUESTS
from analytics_pipeline.resources.local.catalog import DuckDBCatalog

COLUMNS = ("session_id", "request_id", "client_id", "reseller_id", "user_id", "product_id", "path")
SCHEMA = pa.schema(
    [("timestamp", pa.timestamp("ms")), *((column, pa.string()) for column in COLUMNS)]
)


def publish_web_requests(lake_dir: Path, tables_by_day: dict[str, pa.Table]) -> None:
    """Write each day's table as its Parquet version and point the catalog at it."""
    catalog = DuckDBCatalog(lake_dir=str(lake_dir))
    catalog.ensure_table(table_def(WEB_REQUESTS, WEB_REQUESTS.tables[0]))
    locations = {}
    for dt, table in tables_by_day.items():
        path = lake_dir / "parquet" / "web_requests" / f"dt={dt}" / "v1" / "part.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.cast(SCHEMA), path, compression="snappy")
        locations[dt] = str(path)
    catalog.register_partitions("web_requests", locations)


def request_rows_by_day(rows: list[dict[str, Any]]) -> dict[str, pa.Table]:
    """Log lines (timestamp as ISO text) grouped into a table per event day."""
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        stamp = datetime.fromisoformat(row["timestamp"])
        by_day[stamp.date().isoformat()].append(
            {**{c: row.get(c) for c in COLUMNS}, "timestamp": stamp}
        )
    return {dt: pa.Table.from_pylist(day, schema=SCHEMA) for dt, day in by_day.items()}
