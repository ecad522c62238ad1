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


def line(ts: str, session: str, request: str, tenant: str, product: str | None = None) -> dict:
    client, reseller, user = tenant.split("/")
    return {
        "timestamp": ts,
        "session_id": session,
        "request_id": request,
        "client_id": client,
        "reseller_id": reseller,
        "user_id": user,
        "product_id": product,
        "path": f"/api/products/{product}" if product else "/dashboard",
    }


# s-1 spans midnight: one session over 2024-01-01..02, counted once over the period.
# Reseller r-1 exists under both clients: a reseller id means nothing without its client.
LINES = [
    line("2024-01-01T23:58:00", "s-1", "q-1", "c-1/r-1/u-1", "P-1"),
    line("2024-01-01T23:58:00", "s-1", "q-1", "c-1/r-1/u-1", "P-2"),
    line("2024-01-02T00:01:00", "s-1", "q-2", "c-1/r-1/u-1"),
    line("2024-01-02T10:00:00", "s-2", "q-3", "c-1/r-1/u-2", "P-3"),
    line("2024-01-03T09:00:00", "s-3", "q-4", "c-1/r-2/u-3"),
    line("2024-01-01T12:00:00", "s-4", "q-5", "c-2/r-1/u-9", "P-1"),
    line("2024-01-01T12:01:00", "s-4", "q-6", "c-2/r-1/u-9"),
]


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
