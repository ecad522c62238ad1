"""Landing reconciles: every record of every archived file is in staged/ or quarantine/, once."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from analytics_pipeline.datasets.spec import DatasetSpec
from analytics_pipeline.parsing import parse_landing_file
from analytics_pipeline.resources.store import LakeStore, content_version
from analytics_pipeline.staging import quarantine_path

MAX_LISTED_MISMATCHES = 20


@dataclass
class Reconciliation:
    files: int = 0
    landing_records: int = 0
    staged_records: int = 0  # distinct (key, version, line) found in staged/
    quarantined_records: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatches


def reconcile_dataset(
    store: LakeStore, spec: DatasetSpec, *, start: date, now: datetime, max_file_bytes: int
) -> Reconciliation:
    """Every archived file, re-counted, against everything in staged/ and quarantine/."""
    expected: dict[tuple[str, str], int] = {}
    for path in store.list_files(f"archive/{spec.name}/"):
        key = path.removeprefix(f"archive/{spec.name}/").split("~", 1)[0]
        data = store.read_bytes(path)
        # The bytes read_landing would have read, so the version matches the staged rows'.
        version = content_version(data[: max_file_bytes + 1])
        if len(data) > max_file_bytes:
            expected[(key, version)] = 1  # quarantined whole
        else:
            parsed = parse_landing_file(spec, key, data, start=start, now=now)
            expected[(key, version)] = parsed.input_records
    staged_paths = [p for p in store.list_files(f"staged/{spec.name}/") if p.endswith(".parquet")]
    return reconcile_files(store, spec, expected, staged_paths)


def reconcile_files(
    store: LakeStore,
    spec: DatasetSpec,
    expected: dict[tuple[str, str], int],
    staged_paths: list[str],
) -> Reconciliation:
    """Records expected per (key, content version) vs distinct staged lines + quarantine lines."""
    staged = _staged_records_by_file(store, staged_paths)
    result = Reconciliation()
    for (key, version), count in sorted(expected.items()):
        quarantined = _quarantine_lines(store, spec.name, key, version)
        found = staged.get((key, version), 0) + quarantined
        result.files += 1
        result.landing_records += count
        result.staged_records += staged.get((key, version), 0)
        result.quarantined_records += quarantined
        if found != count and len(result.mismatches) < MAX_LISTED_MISMATCHES:
            result.mismatches.append(
                f"{spec.name}/{key}: {count} records, {found} placed "
                f"({staged.get((key, version), 0)} staged, {quarantined} quarantined)"
            )
    return result


def _staged_records_by_file(store: LakeStore, paths: list[str]) -> Counter[tuple[str, str]]:
    """Distinct staged lines per (key, version); counted in DuckDB, not a Python set of rows."""
    columns = ["_source_key", "_source_version", "_source_line"]
    tables = [pq.read_table(pa.BufferReader(store.read_bytes(p)), columns=columns) for p in paths]
    if not tables:
        return Counter()
    con = duckdb.connect()
    try:
        con.register("staged", pa.concat_tables(tables))
        rows = con.execute(
            "SELECT _source_key, _source_version, count(DISTINCT _source_line) "
            "FROM staged GROUP BY _source_key, _source_version"
        ).fetchall()
    finally:
        con.close()
    return Counter({(key, version): n for key, version, n in rows})


def _quarantine_lines(store: LakeStore, dataset: str, key: str, version: str) -> int:
    path = quarantine_path(dataset, key, version)
    if not store.exists(path):
        return 0
    lines = store.read_bytes(path).decode().splitlines()
    return sum(1 for line in lines if json.loads(line)["source_key"] == key)
