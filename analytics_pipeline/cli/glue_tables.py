"""Every table the pipeline writes, as the JSON that Terraform reads to declare the Glue tables.

Dataset tables come from their specs; analytics tables take the columns their SQL returns,
found by running each query on an empty catalog of the dataset tables and the sample
movie_rental tables (the same engine and the same Athena type mapping the analytics assets
use). The movie_rental tables themselves are not declared here: the extract creates them
with the columns of the source database it reads. Regenerate after a spec or SQL change:

    python -m analytics_pipeline.cli.glue_tables > terraform/tables.json
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from analytics_pipeline.cli.samples.movie_rental import sample_table_defs
from analytics_pipeline.datasets import DATASETS
from analytics_pipeline.datasets.table_def import table_def
from analytics_pipeline.defs.analytics import ANALYTICS, athena_typed
from analytics_pipeline.resources.catalog import TableDef
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline.resources.local.engine import DuckDBEngine
from analytics_pipeline.settings import PROJECT_ROOT

TABLES_JSON = PROJECT_ROOT / "terraform" / "tables.json"
REGENERATE = "python -m analytics_pipeline.cli.glue_tables > terraform/tables.json"
# Any valid day: the catalog is empty, only the result's column types matter.
_ANY_DAY = "2020-01-01"


def dataset_tables() -> list[TableDef]:
    return [table_def(spec, table) for spec in DATASETS for table in spec.tables]


def analytics_tables(sources: list[TableDef]) -> list[TableDef]:
    """Each analytics query's output columns, typed as the analytics assets store them."""
    with tempfile.TemporaryDirectory(prefix="glue-tables-") as lake_dir:
        catalog = DuckDBCatalog(lake_dir=lake_dir)
        for table in [*sources, *sample_table_defs()]:
            catalog.ensure_table(table)
        engine = DuckDBEngine(lake_dir=lake_dir)
        tables = []
        for spec in ANALYTICS:
            _, columns = athena_typed(engine.run_query(spec.sql(_ANY_DAY)).table)
            tables.append(TableDef(spec.name, columns, spec.description))
    return tables


def all_tables() -> list[TableDef]:
    sources = dataset_tables()
    return sources + analytics_tables(sources)


def tables_document(tables: list[TableDef] | None = None) -> dict[str, object]:
    """The document Terraform decodes: table name -> description and ordered columns."""
    tables = all_tables() if tables is None else tables
    return {
        "_generated_by": REGENERATE,
        "tables": {
            t.name: {
                "description": t.description,
                "columns": [{"name": name, "type": kind} for name, kind in t.columns],
            }
            for t in tables
        },
    }


def render(tables: list[TableDef] | None = None) -> str:
    return json.dumps(tables_document(tables), indent=2) + "\n"


def read_tables_json(path: Path = TABLES_JSON) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(path.read_text())
    return loaded


def main() -> None:
    print(render(), end="")


if __name__ == "__main__":
    main()
