"""A local lake whose `web_requests` table holds the rows a test names, published as the
pipeline publishes a day: real Parquet under a version folder, registered in the catalog."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import pyarrow as pa

from benchmarks.api_latency import SCHEMA, publish_days

# The benchmark's publisher: the same Parquet and catalog steps as the pipeline's.
publish_web_requests = publish_days
COLUMNS = SCHEMA.names[1:]


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


def request_rows_by_day(rows: list[dict[str, Any]]) -> dict[str, pa.Table]:
    """Log lines (timestamp as ISO text) grouped into a table per event day."""
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        stamp = datetime.fromisoformat(row["timestamp"])
        by_day[stamp.date().isoformat()].append(
            {**{c: row.get(c) for c in COLUMNS}, "timestamp": stamp}
        )
    return {dt: pa.Table.from_pylist(day, schema=SCHEMA) for dt, day in by_day.items()}
