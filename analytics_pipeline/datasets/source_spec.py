"""A relational source declared once: its tables, their primary keys, cursors and kinds."""

from __future__ import annotations

from dataclasses import dataclass

SNAPSHOT = "snapshot"  # whole table read and replaced on every extract
INCREMENTAL = "incremental"  # rows changed since the cursor, merged by primary key

CURSOR_COLUMN = "last_update"


@dataclass(frozen=True)
class SourceTable:
    """One source table: how to read it and, for facts, which column dates its rows."""

    name: str
    primary_key: tuple[str, ...]
    kind: str = SNAPSHOT
    cursor_column: str = CURSOR_COLUMN
    event_date_column: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in (SNAPSHOT, INCREMENTAL):
            raise ValueError(
                f"table {self.name}: kind must be snapshot or incremental, got {self.kind!r}"
            )
        if not self.primary_key:
            raise ValueError(f"table {self.name}: a primary key is required")
        if self.kind == INCREMENTAL and self.event_date_column is None:
            raise ValueError(
                f"table {self.name}: an incremental table needs an event-date column for dt"
            )


@dataclass(frozen=True)
class SourceSpec:
    """A database source: its name (the env var and lake prefix derive from it) and tables."""

    name: str
    tables: tuple[SourceTable, ...]

    @property
    def url_env_var(self) -> str:
        return f"ANALYTICS_{self.name.upper()}_DB_URL"

    @property
    def default_file(self) -> str:
        """Path of the default SQLite database, relative to the lake root."""
        return f"sources/{self.name}.sqlite"

    def table(self, name: str) -> SourceTable:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(f"source {self.name}: no table {name!r}")
