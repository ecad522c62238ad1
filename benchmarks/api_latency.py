"""`make bench --only api`: p50/p95 latency of the API's stats at each level for 1 day,
1 month and 1 year of generated web logs, beside DuckDB running the same query directly
(an open connection, no HTTP, no auth: the floor) in the same run.

    python -m benchmarks.api_latency                              # quick: 60 days x 20k
    python -m benchmarks.api_latency --days 365 --requests-per-day 100000 --repeat 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from analytics_pipeline.datasets.table_def import table_def
from analytics_pipeline.datasets.web_requests import WEB_REQUESTS
from analytics_pipeline.defs.analytics import ANALYTICS, athena_typed
from analytics_pipeline.lake.athena_cost import query_cost_usd
from analytics_pipeline.lake.sql_text import sql_string_literal
from analytics_pipeline.resources.catalog import TableDef
from analytics_pipeline.resources.local.catalog import CATALOG_FILE, DuckDBCatalog
from analytics_pipeline.resources.local.engine import DuckDBEngine, athena_to_duckdb
from analytics_pipeline.serving.api_keys import KeyFile
from analytics_pipeline.serving.app import create_app
from analytics_pipeline.serving.queries import SESSION_DAYS, StatsQuery
from analytics_pipeline.serving.scopes import Scope
from analytics_pipeline.settings import Settings

CLIENTS, RESELLERS, USERS = 20, 5, 50  # 5,000 users
REQUESTS_PER_SESSION = 4
SPANNING_SESSIONS = 0.05  # share of a day's sessions that began the day before
PRODUCTS = 500
FIRST_DAY = date(2024, 1, 1)
# (level, the key that asks it): each scoped as a tenant of the viewer would be.
ASKS = (
    ("global", "global"),
    ("client", "client=client-00"),
    ("reseller", "reseller=client-00/reseller-00"),
    ("user", "reseller=client-00/reseller-00"),
)
SCHEMA = pa.schema(
    [("timestamp", pa.timestamp("ms"))]
    + [
        (name, pa.string())
        for name in (
            "session_id",
            "request_id",
            "client_id",
            "reseller_id",
            "user_id",
            "product_id",
            "path",
        )
    ]
)


def labels(prefix: str, count: int) -> pa.Array:
    return pa.array([f"{prefix}-{i:02d}" for i in range(count)])


def numbered(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")


def web_requests_day(day: date, requests: int, rng: np.random.Generator) -> pa.Table:
    """One day of logs: a row per request and product touched (none: one row, null product).
    A session's tenant follows from its number, so a session begun yesterday keeps its user."""
    sessions = max(1, requests // REQUESTS_PER_SESSION)
    session_of_request = rng.integers(0, sessions, requests)
    products_touched = rng.choice([0, 1, 2], size=requests, p=[0.6, 0.3, 0.1])
    rows = np.repeat(np.arange(requests), np.maximum(products_touched, 1))
    session = session_of_request[rows]
    user = (session * 7919) % (CLIENTS * RESELLERS * USERS)
    from_yesterday = session < sessions * SPANNING_SESSIONS
    session_day = np.where(from_yesterday, day.toordinal() - 1, day.toordinal())
    product = rng.integers(0, PRODUCTS, len(rows))
    has_product = products_touched[rows] > 0
    seconds = np.sort(rng.integers(0, 86_400_000, requests))[rows]
    start_ms = (day - date(1970, 1, 1)).days * 86_400_000
    clients = pa.DictionaryArray.from_arrays(
        pa.array(user // (RESELLERS * USERS)), labels("client", CLIENTS)
    )
    resellers = pa.DictionaryArray.from_arrays(
        pa.array(user // USERS % RESELLERS), labels("reseller", RESELLERS)
    )
    users = pa.DictionaryArray.from_arrays(
        pa.array(user), labels("user", CLIENTS * RESELLERS * USERS)
    )
    return pa.table(
        {
            "timestamp": pa.array(start_ms + seconds, pa.int64()).cast(pa.timestamp("ms")),
            "session_id": numbered("s", session_day * 1_000_000 + session),
            "request_id": numbered(f"r{day:%Y%m%d}-", rows),
            "client_id": clients.cast(pa.string()),
            "reseller_id": resellers.cast(pa.string()),
            "user_id": users.cast(pa.string()),
            "product_id": pc.if_else(pa.array(has_product), numbered("P-", product), None),
            "path": pc.if_else(pa.array(has_product), "/api/products", "/dashboard"),
        },
        schema=SCHEMA,
    )


def write_day(lake_dir: Path, table: str, dt: str, rows: pa.Table) -> str:
    path = lake_dir / "parquet" / table / f"dt={dt}" / "v1" / "part.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows, path, compression="snappy")
    return str(path)


def publish_days(lake_dir: Path, tables_by_day: dict[str, pa.Table]) -> None:
    """Each day as the pipeline publishes it: a snappy Parquet version of web_requests,
    registered in the catalog, then that day of web_session_days by its analytics SQL."""
    catalog = DuckDBCatalog(lake_dir=str(lake_dir))
    catalog.ensure_table(table_def(WEB_REQUESTS, WEB_REQUESTS.tables[0]))
    days = {
        dt: write_day(lake_dir, "web_requests", dt, t.cast(SCHEMA))
        for dt, t in tables_by_day.items()
    }
    catalog.register_partitions("web_requests", days)
    spec = next(a for a in ANALYTICS if a.name == SESSION_DAYS)
    engine = DuckDBEngine(lake_dir=str(lake_dir))
    rollups: dict[str, str] = {}
    columns: tuple[tuple[str, str], ...] = ()
    for dt in tables_by_day:
        typed, columns = athena_typed(engine.run_query(spec.sql(dt)).table)
        rollups[dt] = write_day(lake_dir, spec.name, dt, typed)
    catalog.ensure_table(TableDef(spec.name, columns, spec.description))
    catalog.register_partitions(spec.name, rollups)


def generate_year(lake_dir: Path, days: int, requests_per_day: int) -> tuple[int, int]:
    """Rows and Parquet bytes written."""
    rng = np.random.default_rng(7)
    rows = 0
    for start in range(0, days, 30):  # a month of days per catalog rewrite
        month = {}
        for offset in range(start, min(start + 30, days)):
            day = FIRST_DAY + timedelta(days=offset)
            month[day.isoformat()] = web_requests_day(day, requests_per_day, rng)
            rows += month[day.isoformat()].num_rows
        publish_days(lake_dir, month)
    size = sum(p.stat().st_size for p in (lake_dir / "parquet" / "web_requests").rglob("*.parquet"))
    return rows, size


def column_bytes(table_dir: Path) -> int:
    """Compressed bytes of the table's columns over all its days: what Athena scans for a
    query over all the days that reads every column (it reads column chunks, not footers)."""
    total = 0
    for path in table_dir.rglob("*.parquet"):
        metadata = pq.ParquetFile(path).metadata
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            total += sum(
                row_group.column(i).total_compressed_size for i in range(metadata.num_columns)
            )
    return total


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def percentile(values: list[float], q: int) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def measure(
    api: TestClient,
    floor: duckdb.DuckDBPyConnection,
    level: str,
    scope: str,
    key: str,
    dates: tuple[date, date],
    repeat: int,
) -> str:
    """The row's figures: rows answered, API and DuckDB p50/p95, and their ratio."""
    params = {"level": level, "from": dates[0].isoformat(), "to": dates[1].isoformat()}
    headers = {"Authorization": f"Bearer {key}"}
    sql, values = StatsQuery.parse(
        Scope.parse(scope), level, params["from"], params["to"], {}, None
    ).sql()
    duck_sql = athena_to_duckdb(sql)

    def ask_api() -> int:
        response = api.get("/v1/web-requests/stats", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return len(response.json()["rows"])

    def ask_duckdb() -> int:
        return len(floor.execute(duck_sql, values).fetchall())

    answered = ask_api()
    assert answered == ask_duckdb(), "the API and DuckDB disagree"
    api_times, floor_times = [], []
    for _ in range(repeat):  # interleaved: both see the same host load
        api_times.append(timed(ask_api))
        floor_times.append(timed(ask_duckdb))
    a50, a95 = percentile(api_times, 50), percentile(api_times, 95)
    f50, f95 = percentile(floor_times, 50), percentile(floor_times, 95)
    return (
        f"{answered} | {a50 * 1000:.0f} ms | {a95 * 1000:.0f} ms | {f50 * 1000:.0f} ms |"
        f" {f95 * 1000:.0f} ms | {a50 / f50:.2f}x |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60, help="365 for the figure")
    parser.add_argument(
        "--requests-per-day", type=int, default=20_000, help="100000 for the figure"
    )
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        lake = Path(tmp) / "lake"
        started = time.perf_counter()
        rows, size = generate_year(lake, args.days, args.requests_per_day)
        print(
            f"web_requests: {args.days} days x {args.requests_per_day:,} requests = {rows:,} rows,"
            f" {size / 2**20:,.0f} MiB Parquet (generated in {time.perf_counter() - started:.0f} s)"
        )
        # What a user-level stats query reads of web_session_days: every column.
        scanned = column_bytes(lake / "parquet" / SESSION_DAYS)
        print(
            f"a user-level stats query over all {args.days} days reads {scanned / 2**20:,.0f} MiB"
            f" of columns: on Athena ${query_cost_usd(scanned):.4f} at $5/TB"
        )
        store = KeyFile(Path(tmp) / "keys.json")
        keys = {scope: store.add_key(Scope.parse(scope)) for _, scope in ASKS}
        settings = replace(
            Settings.from_env({"ANALYTICS_LAKE_DIR": str(lake)}), api_keys_file=store.path
        )
        api = TestClient(create_app(settings))
        floor = duckdb.connect()
        floor.execute(f"ATTACH {sql_string_literal(str(lake / CATALOG_FILE))} AS lake (READ_ONLY)")
        floor.execute("USE lake")
        last = FIRST_DAY + timedelta(days=args.days - 1)
        ranges = {"1 day": 1, "1 month": 30, "1 year": 365}
        print(f"\n{args.repeat} requests each (TestClient: HTTP over ASGI in-process, auth, JSON)")
        print(
            "| level (key) | range | rows | API p50 | API p95 | DuckDB p50 | DuckDB p95"
            " | API / DuckDB (p50) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for level, scope in ASKS:
            for name, days in ranges.items():
                first = max(FIRST_DAY, last - timedelta(days=days - 1))
                row = measure(api, floor, level, scope, keys[scope], (first, last), args.repeat)
                print(f"| {level} ({scope}) | {name} ({(last - first).days + 1} d) | {row}")
        floor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
