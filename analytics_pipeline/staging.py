"""Stage landing files: records to staged/ by event date, rejects to quarantine/, then archive.

The order is the guarantee: a landing file is archived only after every one of its records
is durably in staged/ or quarantine/. Staged rows carry their source (key, content version,
line), so a batch staged twice after a crash is deduplicated when the day's Parquet is built.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics_pipeline.datasets.spec import ARROW_TYPES, DatasetSpec
from analytics_pipeline.fast_parsing import (
    FAST_PATH_MIN_BYTES,
    ParsedTable,
    parse_landing_table,
    supports_fast_path,
)
from analytics_pipeline.parsing import ParsedFile, Rejection, parse_landing_file, raw_preview
from analytics_pipeline.resources.store import LakeStore, LandingObjectGone
from analytics_pipeline.validation import count_unknown

SOURCE_COLUMNS = ("_source_key", "_source_version", "_source_line")
# Bound memory on big batches: staged files are written every this many records.
FLUSH_RECORDS = 250_000
# Big NDJSON files parsed at once (in threads: Arrow releases the GIL), each one in memory.
PARSE_WORKERS = 2


@dataclass
class FileOutcome:
    key: str
    version: str | None = None
    records: int = 0
    staged: int = 0
    rejected: int = 0
    blank_lines: int = 0
    gone: bool = False  # archived by another run before this one read it
    # Staged records carrying fields the spec does not know, by field (schema drift).
    unknown_fields: dict[str, int] = field(default_factory=dict)


@dataclass
class StageReport:
    dataset: str
    batch_id: str
    files: list[FileOutcome] = field(default_factory=list)
    staged_rows_by_dt: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    staged_paths: list[str] = field(default_factory=list)
    quarantine_paths: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Staged records carrying fields not in the spec, by dotted field name (schema drift,
    # e.g. {"colour": 12, "attributes.plan": 3}); empty when none. Capped at
    # MAX_UNKNOWN_FIELD_NAMES names, the rest counted under OTHER_UNKNOWN_FIELDS.
    unknown_fields: dict[str, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def staged(self) -> int:
        return sum(f.staged for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)


def staged_schema(spec: DatasetSpec) -> pa.Schema:
    return pa.schema(
        [(f.name, ARROW_TYPES[f.athena_type]) for f in spec.fields]
        + [
            ("_source_key", pa.string()),
            ("_source_version", pa.string()),
            ("_source_line", pa.int32()),
        ]
    )


def file_id(key: str, version: str) -> str:
    """A landing file's identity: its key and its content, never its arrival time."""
    return hashlib.sha256(f"{key}\0{version}".encode()).hexdigest()[:20]


def quarantine_path(dataset: str, key: str, version: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", key)[-80:]
    return f"quarantine/{dataset}/{readable}.{file_id(key, version)}.jsonl"


def stage_landing_files(
    store: LakeStore,
    spec: DatasetSpec,
    keys: list[str],
    *,
    start: date,
    now: datetime,
    max_file_bytes: int,
) -> StageReport:
    """Stage these landing keys of one dataset; archive each once its records are placed."""
    report = StageReport(spec.name, batch_id="")
    pending = _Pending()
    read: list[FileOutcome] = []
    identities: list[str] = []
    parts = 0
    fetched_files = store.read_landing_many(spec.name, sorted(set(keys)), max_file_bytes)

    def parse(key: str, data: bytes) -> ParsedFile | ParsedTable:
        return _parse(spec, key, data, max_file_bytes, start=start, now=now)

    for key, fetched, parsed in _parsed_ahead(spec, fetched_files, parse):
        outcome = FileOutcome(key)
        report.files.append(outcome)
        if fetched is None or parsed is None:
            outcome.gone = True
            continue
        version = fetched[1]
        outcome.version = version
        identities.append(file_id(key, version))
        _account(report, outcome, parsed)
        pending.add(parsed, key, version)
        if parsed.rejections:
            path = quarantine_path(spec.name, key, version)
            store.write_bytes(path, _jsonl(r.as_json() for r in parsed.rejections))
            report.quarantine_paths.append(path)
        read.append(outcome)
        if pending.size >= FLUSH_RECORDS:
            _flush(store, spec, report, pending, identities, parts)
            parts += 1
    if pending.size:
        _flush(store, spec, report, pending, identities, parts)
    report.batch_id = _batch_id(identities)
    # Only now is every record of every read file durably placed.
    for outcome in read:
        try:
            store.archive_landing(spec.name, outcome.key, outcome.version)
        except LandingObjectGone:
            outcome.gone = True
    return report


@dataclass
class _Pending:
    """Staged rows not yet written, by event date: dicts from the row path, tables from Arrow."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    tables: dict[str, list[pa.Table]] = field(default_factory=lambda: defaultdict(list))
    size: int = 0

    def add(self, parsed: ParsedFile | ParsedTable, key: str, version: str) -> None:
        if isinstance(parsed, ParsedFile):
            for record in parsed.records:
                record["_source_key"] = key
                record["_source_version"] = version
                self.rows[record.pop("dt")].append(record)
            self.size += len(parsed.records)
            return
        table = parsed.table
        n = table.num_rows
        table = table.append_column("_source_key", pa.repeat(pa.scalar(key, pa.string()), n))
        table = table.append_column(
            "_source_version", pa.repeat(pa.scalar(version, pa.string()), n)
        )
        dts = table.column("dt")
        for dt in pc.unique(dts).to_pylist():
            self.tables[dt].append(table.filter(pc.equal(dts, dt)).drop_columns(["dt"]))
        self.size += n

    def by_dt(self, schema: pa.Schema) -> list[tuple[str, pa.Table]]:
        out = []
        for dt in sorted(set(self.rows) | set(self.tables)):
            parts = [t.select(schema.names).cast(schema) for t in self.tables.get(dt, [])]
            if self.rows.get(dt):
                parts.insert(0, pa.Table.from_pylist(self.rows[dt], schema=schema))
            out.append((dt, pa.concat_tables(parts)))
        return out

    def clear(self) -> None:
        self.rows.clear()
        self.tables.clear()
        self.size = 0


def _parsed_ahead(
    spec: DatasetSpec,
    fetched_files: Iterator[tuple[str, tuple[bytes, str] | None]],
    parse: Callable[[str, bytes], ParsedFile | ParsedTable],
) -> Iterator[tuple[str, tuple[bytes, str] | None, ParsedFile | ParsedTable | None]]:
    """Files with their parse, in order; big NDJSON files parsed PARSE_WORKERS at a time.

    Arrow releases the GIL, so two big files parse on two cores; small files are parsed
    inline (a thread hand-off would cost more than their parse).
    """
    if not supports_fast_path(spec):
        for key, fetched in fetched_files:
            yield key, fetched, (parse(key, fetched[0]) if fetched is not None else None)
        return
    with ThreadPoolExecutor(max_workers=PARSE_WORKERS, thread_name_prefix="parse") as pool:
        ahead: deque[tuple[str, tuple[bytes, str] | None, Any]] = deque()
        for key, fetched in fetched_files:
            if fetched is None:
                ahead.append((key, None, None))
            elif len(fetched[0]) >= FAST_PATH_MIN_BYTES:
                ahead.append((key, fetched, pool.submit(parse, key, fetched[0])))
            else:
                ahead.append((key, fetched, parse(key, fetched[0])))
            while len(ahead) >= PARSE_WORKERS:
                yield _resolved(ahead.popleft())
        while ahead:
            yield _resolved(ahead.popleft())


def _resolved(
    item: tuple[str, tuple[bytes, str] | None, Any],
) -> tuple[str, tuple[bytes, str] | None, ParsedFile | ParsedTable | None]:
    key, fetched, parsed = item
    return key, fetched, (parsed.result() if isinstance(parsed, Future) else parsed)


def _parse(
    spec: DatasetSpec, key: str, data: bytes, max_file_bytes: int, *, start: date, now: datetime
) -> ParsedFile | ParsedTable:
    if len(data) > max_file_bytes:
        parsed = ParsedFile(key)
        reason = f"file is larger than the limit of {max_file_bytes} bytes"
        parsed.rejections.append(Rejection(key, None, reason, raw_preview(data)))
        return parsed
    if supports_fast_path(spec) and len(data) >= FAST_PATH_MIN_BYTES:
        return parse_landing_table(spec, key, data, start=start, now=now)
    return parse_landing_file(spec, key, data, start=start, now=now)


def _account(report: StageReport, outcome: FileOutcome, parsed: ParsedFile | ParsedTable) -> None:
    outcome.records = parsed.input_records
    outcome.rejected = len(parsed.rejections)
    outcome.blank_lines = parsed.blank_lines
    if isinstance(parsed, ParsedTable):
        outcome.staged = parsed.table.num_rows
        for item in pc.value_counts(parsed.table.column("dt")).to_pylist():
            report.staged_rows_by_dt[item["values"]] += item["counts"]
    else:
        outcome.staged = len(parsed.records)
        for record in parsed.records:
            report.staged_rows_by_dt[record["dt"]] += 1
    for rejection in parsed.rejections:
        report.reasons[_reason_kind(rejection.reason)] += 1
    for name, n in parsed.unknown_fields.items():
        count_unknown(outcome.unknown_fields, name, n)
        count_unknown(report.unknown_fields, name, n)


def _flush(
    store: LakeStore,
    spec: DatasetSpec,
    report: StageReport,
    pending: _Pending,
    identities: list[str],
    part: int,
) -> None:
    schema = staged_schema(spec)
    batch = _batch_id(identities)
    for dt, table in pending.by_dt(schema):
        path = f"staged/{spec.name}/dt={dt}/{batch}-{part:04d}.parquet"
        store.write_bytes(path, parquet_bytes(table))
        report.staged_paths.append(path)
    pending.clear()


def parquet_bytes(table: pa.Table, metadata: dict[str, str] | None = None) -> bytes:
    """Snappy Parquet with millisecond timestamps (what Athena and Glue read best)."""
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    sink = io.BytesIO()
    pq.write_table(
        table, sink, compression="snappy", coerce_timestamps="ms", allow_truncated_timestamps=False
    )
    return sink.getvalue()


def _batch_id(identities: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(identities)).encode()).hexdigest()[:20]


def _reason_kind(reason: str) -> str:
    """Group reasons for the UI: drop the quoted value so counts aggregate."""
    return re.sub(r"'[^']*'|\d+", "…", reason)[:120]


def _jsonl(rows: Any) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
