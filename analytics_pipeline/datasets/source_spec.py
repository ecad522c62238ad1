"""A relational source declared, not coded: its tables, keys, change cursor and event dates."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TableKind(StrEnum):
    SNAPSHOT = "snapshot"  # re-read whole and replaced atomically on every extract
    INCREMENTAL = "incremental"  # read by cursor, partitioned by the event date's day


@dataclass(frozen=True)
class SourceTable:
    name: str
    primary_key: tuple[str, ...]
    kind: TableKind = TableKind.SNAPSHOT
    event_date: str | None = None  # the column whose day partitions an incremental table
    cursor: str = "last_update"

    def __post_init__(self) -> None:
        if not self.primary_key:
            raise ValueError(f"source table {self.name}: a primary key is required")
        if (self.kind is TableKind.INCREMENTAL) != (self.event_date is not None):
            raise ValueError(
                f"source table {self.name}: an incremental table needs an event_date column, "
                "and only an incremental one"
            )


@dataclass(frozen=True)
class SourceSpec:
    name: str
    tables: tuple[SourceTable, ...]
    # How far before the cursor a change is re-read: a transaction that commits late
    # carries a last_update older than rows already read.
    overlap_seconds: int = 3600
    # Its tables are extracted hourly: one not rebuilt for this long missed two extracts and
    # fails its freshness policy; ANALYTICS_FRESHNESS_HOURS overrides it by the source's name.
    freshness_hours: int = 3

    def table(self, name: str) -> SourceTable:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(f"source {self.name} has no table {name!r}")
