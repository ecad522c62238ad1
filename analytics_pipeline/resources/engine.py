"""The query engine interface: run one Athena-dialect statement (local/ and aws/ implement it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg
import pyarrow as pa


@dataclass(frozen=True)
class QueryResult:
    table: pa.Table
    executed_sql: str  # what the engine actually ran (transpiled locally)
    engine: str
    seconds: float
    stats: dict[str, float | str] = field(default_factory=dict)


class QueryEngine(dg.ConfigurableResource):
    """What the assets need of a query engine: run one Athena-dialect statement."""

    def run_query(self, athena_sql: str) -> QueryResult:
        raise NotImplementedError

    def run_day_query(self, athena_sql: str, dt: str, tables: Sequence[str]) -> QueryResult:
        """A statement that reads `tables` on day `dt` alone (its SQL filters them to it): an
        engine may read only that day's files. Athena prunes by partition itself."""
        return self.run_query(athena_sql)
