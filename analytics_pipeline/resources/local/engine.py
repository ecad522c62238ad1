"""The local query engine: Athena-dialect SQL transpiled to DuckDB, over the local catalog."""

from __future__ import annotations

import functools
import time
from pathlib import Path

from analytics_pipeline.lake.sql_text import sql_string_literal
from analytics_pipeline.resources.engine import QueryEngine, QueryResult
from analytics_pipeline.resources.local.catalog import CATALOG_FILE


@functools.lru_cache(maxsize=512)
def athena_to_duckdb(sql: str) -> str:
    """Transpile Athena (Trino) SQL; raises sqlglot.ParseError on SQL Athena would reject.
    Remembered: a run sends the same statements day after day."""
    import sqlglot  # lazily: ~0.5 s to import, needed only when a query runs

    statements = sqlglot.transpile(sql, read="athena", write="duckdb", pretty=True)
    if len(statements) != 1:
        raise ValueError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


class DuckDBEngine(QueryEngine):
    """Runs queries against a read-only snapshot of the local catalog."""

    lake_dir: str

    def run_query(self, athena_sql: str) -> QueryResult:
        sql = athena_to_duckdb(athena_sql)
        catalog = Path(self.lake_dir).resolve() / CATALOG_FILE
        started = time.monotonic()
        import duckdb  # lazily: loading the definitions must not pay for it

        con = duckdb.connect()
        try:
            if catalog.exists():
                con.execute(f"ATTACH {sql_string_literal(str(catalog))} AS lake (READ_ONLY)")
                con.execute("USE lake")
            table = con.sql(sql).to_arrow_table()
        finally:
            con.close()
        return QueryResult(table, sql, "duckdb", time.monotonic() - started)
