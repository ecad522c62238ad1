"""The API's query engine: one parameterised Athena-dialect SELECT in, rows out.

Locally DuckDB over the catalog file; on AWS Athena through pyathena (athena.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb

from analytics_pipeline.resources.local.catalog import CATALOG_FILE
from analytics_pipeline.resources.local.engine import athena_to_duckdb, catalog_snapshot
from analytics_pipeline.serving.errors import Unavailable


@dataclass(frozen=True)
class Answer:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    engine: str
    seconds: float
    query_id: str | None = None
    bytes_scanned: int | None = None  # what Athena billed on; None where nothing is billed
    cost_usd: float | None = None
    reused_result: bool | None = None

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class ServingEngine(Protocol):
    def query(self, athena_sql: str, params: Sequence[str]) -> Answer: ...


class DuckDBServingEngine:
    """Reads the local catalog read-only through the pipeline engine's snapshot of it (one
    attachment per version of the file, which the pipeline replaces by rename): each query
    sees the latest catalog and never holds a writer up."""

    def __init__(self, lake_dir: Path) -> None:
        self.catalog = Path(lake_dir).resolve() / CATALOG_FILE

    def query(self, athena_sql: str, params: Sequence[str]) -> Answer:
        if not self.catalog.exists():
            raise Unavailable(f"the lake has no catalog yet ({self.catalog}): run make demo")
        started = time.monotonic()
        snapshot, attached = catalog_snapshot(self.catalog)
        con = snapshot.cursor()
        try:
            if attached:
                con.execute("USE lake")
            try:
                result = con.execute(athena_to_duckdb(athena_sql), list(params))
            except duckdb.CatalogException as error:
                raise Unavailable(f"the lake cannot answer yet: {error}") from None
            columns = [d[0] for d in result.description or []]
            rows = result.fetchall()
        finally:
            con.close()
        return Answer(columns, rows, "duckdb", time.monotonic() - started)
