"""Small helpers tests share: drop landing files, read tables back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from analytics_pipeline.resources.catalog import CATALOG_FILE


def drop(lake_dir: Path, dataset: str, key: str, content: str | bytes) -> Path:
    """Put a file into landing/<dataset>/<key>, as a producer would."""
    path = lake_dir / "landing" / dataset / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def ndjson(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def query(lake_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run SQL against the catalog as a user's own read-only DuckDB session would."""
    con = duckdb.connect(str(lake_dir / CATALOG_FILE), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def quarantine_lines(lake_dir: Path, dataset: str) -> list[dict[str, Any]]:
    lines = []
    for path in sorted((lake_dir / "quarantine" / dataset).glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines()]
    return lines


def landing_files(lake_dir: Path, dataset: str) -> list[str]:
    base = lake_dir / "landing" / dataset
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
