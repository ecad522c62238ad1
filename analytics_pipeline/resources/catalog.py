"""The table catalog interface: tables and their registered days (local/ and aws/ implement it)."""

from __future__ import annotations

import dagster as dg

from analytics_pipeline.lake.table_definition import TableDef


class SchemaChangeError(ValueError):
    """A table's new definition drops or retypes columns readers rely on."""


class Catalog(dg.ConfigurableResource):
    """What the assets need of a table catalog. Locations are the day's Parquet file."""

    def ensure_table(self, table: TableDef) -> str:
        """Create the table, or add new columns; 'created', 'updated' or 'unchanged'."""
        raise NotImplementedError

    def register_partition(self, table: str, dt: str, location: str) -> str | None:
        """Point the table's day at a new location; returns the location it replaced."""
        raise NotImplementedError

    def register_partitions(self, table: str, locations: dict[str, str]) -> dict[str, str | None]:
        """Point many days at once (a run's range); returns each day's replaced location."""
        return {dt: self.register_partition(table, dt, loc) for dt, loc in locations.items()}

    def partition_location(self, table: str, dt: str) -> str | None:
        raise NotImplementedError

    def partitions(self, table: str) -> dict[str, str]:
        raise NotImplementedError

    def tables(self) -> list[str]:
        raise NotImplementedError


def check_compatible(current: TableDef, new: TableDef) -> None:
    """Refuse a change that drops or retypes a column; only added columns apply in place."""
    old = dict(current.columns)
    changed = [c for c, kind in new.columns if c in old and old[c] != kind]
    dropped = [c for c in old if c not in dict(new.columns)]
    if changed or dropped:
        details = [f"retyped {c}: {old[c]} -> {dict(new.columns)[c]}" for c in changed]
        details += [f"dropped {c}" for c in dropped]
        raise SchemaChangeError(
            f"table {current.name}: incompatible schema change ({'; '.join(details)}); "
            "only added columns are applied in place"
        )
