"""`make demo`: sample data for every dataset through the whole lake, headless, then the proof.

Generates two weeks of sample data (bad and unrouted records included) into the lake's
landing/, runs the landing sensors and automation to completion in-process, and prints row
counts per table, quarantined records per dataset and an analytics result. Exits 1 if any
run failed or any table or quarantine count differs from what the sample delivered.
Re-runnable: the same sample re-delivered is not counted twice.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stderr
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from analytics_pipeline.cli.dagster_home import command_instance
from analytics_pipeline.cli.process import ProcessSummary, headless_definitions, process_landing
from analytics_pipeline.cli.quick_exit import exit_now
from analytics_pipeline.cli.sample_data import SampleSummary, generate
from analytics_pipeline.lake.parsing.validation import NOT_ROUTED
from analytics_pipeline.memory_pool import use_system_memory_pool
from analytics_pipeline.resources.local.catalog import CATALOG_FILE, DuckDBCatalog
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args(argv)
    use_system_memory_pool()
    started = time.monotonic()

    settings = Settings.from_env()
    LocalLakeStore(lake_dir=str(settings.lake_dir)).ensure_layout()
    end_date = datetime.now(UTC).date() - timedelta(days=1)
    sample = generate(settings.lake_dir, end_date=end_date, days=args.days)
    _print_lines(sample.lines())

    instance = command_instance()
    defs = headless_definitions(settings)
    with instance:
        log_path = Path(instance.root_directory) / "logs" / "demo.log"
        print(f"\nprocessing landing/ in-process (Dagster's run logs: {log_path}) ...", flush=True)
        with dagster_logs_to(log_path):
            processed = process_landing(defs, instance)
    _print_lines(processed.lines())

    ok = report(settings.lake_dir, sample, processed)
    if not ok:
        sys.stderr.write("".join(log_path.read_text().splitlines(keepends=True)[-40:]))
    print(f"\n{'OK' if ok else 'FAILED'}: demo finished in {time.monotonic() - started:.1f}s")
    return 0 if ok else 1


@contextmanager
def dagster_logs_to(path: Path) -> Iterator[None]:
    """Send what Dagster writes to stderr into a file, for the length of the block.

    Each in-process run gets its own console logger at DEBUG (not reachable through
    logging.getLogger), and every event of every step would flood the terminal. Those
    loggers write to whatever sys.stderr is when they log, so a redirect catches them.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as log, redirect_stderr(log):
        yield


def report(lake_dir: Path, sample: SampleSummary, processed: ProcessSummary) -> bool:
    """Print what the lake holds and whether it matches the sample; True if it does."""
    tables = DuckDBCatalog(lake_dir=str(lake_dir)).tables()
    con = duckdb.connect(str(Path(lake_dir) / CATALOG_FILE), read_only=True)
    try:
        print("\nrows per catalog table (all days in the lake)")
        _print_table(
            ("table", "rows", "days"),
            [
                (name, *_rows(con, f'SELECT count(*), count(DISTINCT dt) FROM "{name}"')[0])
                for name in tables
            ],
        )

        print(
            f"\ngood records of this sample ({sample.start_date} .. {sample.end_date}) "
            "vs rows in the tables for its days"
        )
        mismatches = 0
        checks = []
        for name, days in sample.table_days.items():
            expected = sum(days.values())
            checks.append(_count_check(name, expected, _table_rows(con, tables, name, list(days))))
        # The movie-rental database's tables hold every source row, whatever its day.
        for name, expected in sample.database_rows.items():
            checks.append(_count_check(name, expected, _table_rows(con, tables, name)))
        mismatches += sum(check[-1] != "ok" for check in checks)
        _print_table(("table", "expected", "actual", ""), checks)

        print("\nquarantined records per dataset (unrouted: valid, but of a type no table takes)")
        rows = []
        for dataset, delivered in sample.datasets.items():
            entries = _quarantine_entries(lake_dir, dataset)
            ours = [e for e in entries if e.get("source_key") in set(delivered.keys)]
            unrouted = sum(1 for e in ours if e.get("reason", "").endswith(NOT_ROUTED))
            delivered_counts = (delivered.bad_records, delivered.unrouted_records)
            status = "ok" if (len(ours) - unrouted, unrouted) == delivered_counts else "MISMATCH"
            mismatches += status != "ok"
            rows.append((dataset, len(entries), *delivered_counts, len(ours), unrouted, status))
        _print_table(
            ("dataset", "all lines", "bad", "unrouted", "this sample", "of them unrouted", ""),
            rows,
        )

        _print_analytics(con, tables, sample.end_date.isoformat())
    finally:
        con.close()
    if processed.failed_runs:
        print(f"\n{len(processed.failed_runs)} runs failed: see `make dev` -> Runs for details")
    return mismatches == 0 and not processed.failed_runs


def _print_analytics(con: duckdb.DuckDBPyConnection, tables: list[str], dt: str) -> None:
    if "daily_product_counts" in tables:
        print(f"\ndaily_product_counts for {dt}")
        _print_table(
            ("product", "count"),
            _rows(
                con,
                "SELECT product, product_count FROM daily_product_counts WHERE dt = ? "
                "ORDER BY product",
                [dt],
            ),
        )
    if "web_request_stats" in tables:
        print(f"\nweb_request_stats for {dt}, client level")
        _print_table(
            ("client", "sessions", "requests", "req/session", "products/req"),
            [
                (client, sessions, requests, f"{per_session:.2f}", f"{per_request:.2f}")
                for client, sessions, requests, per_session, per_request in _rows(
                    con,
                    "SELECT client_id, unique_sessions, requests, requests_per_session, "
                    "products_per_request FROM web_request_stats "
                    "WHERE dt = ? AND level = 'client' ORDER BY client_id",
                    [dt],
                )
            ],
        )

    if "daily_rental_revenue_by_category" in tables:
        print(f"\ndaily_rental_revenue_by_category for {dt} (the movie_rental database)")
        _print_table(
            ("category", "payments", "revenue"),
            [
                (category or "(none)", payments, f"{revenue:.2f}")
                for category, payments, revenue in _rows(
                    con,
                    "SELECT category, payments, revenue FROM daily_rental_revenue_by_category "
                    "WHERE dt = ? ORDER BY revenue DESC, category",
                    [dt],
                )
            ],
        )


def _table_rows(
    con: duckdb.DuckDBPyConnection, tables: list[str], table: str, days: list[str] | None = None
) -> int | None:
    """The table's rows on those days (all days: None); None when there is no such table."""
    if table not in tables:
        return None
    if days is None:
        return int(_rows(con, f'SELECT count(*) FROM "{table}"')[0][0])
    placeholders = ", ".join("?" for _ in days)
    return int(
        _rows(con, f'SELECT count(*) FROM "{table}" WHERE dt IN ({placeholders})', days)[0][0]
    )


def _count_check(table: str, expected: int, actual: int | None) -> tuple[str, int, Any, str]:
    status = "ok" if actual == expected else "MISMATCH"
    return (table, expected, "missing" if actual is None else actual, status)


def _rows(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> list[tuple[Any, ...]]:
    # fetchall: DuckDB 2.0 relations have no fetchone (it raises).
    return con.execute(sql, params or []).fetchall()


def _quarantine_entries(lake_dir: Path, dataset: str) -> list[dict[str, Any]]:
    entries = []
    for path in sorted((Path(lake_dir) / "quarantine" / dataset).glob("*.jsonl")):
        entries += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return entries


def _print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print(
            "  "
            + "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))
    if not rows:
        print("  (no rows)")


def _print_lines(lines: list[str]) -> None:
    for line in lines:
        print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    exit_now(main())
