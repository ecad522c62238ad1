"""The query engine interface: run one Athena-dialect statement (local/ and aws/ implement it)."""

from __future__ import annotations

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
