"""A table as the catalog registers it: a name, its columns in Athena types, a description."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableDef:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, Athena type)
    description: str = ""
