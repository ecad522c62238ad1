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
import tempfile
import zlib
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics_pipeline.datasets.spec import ARROW_TYPES, DatasetSpec
from analytics_pipeline.lake.fast_parsing import (
    FAST_PATH_MIN_BYTES,
    ParsedDocuments,
    ParsedTable,
    parse_documents,
    parse_landing_table,
    parse_ndjson_block,
    supports_document_batches,
    supports_fast_path,
)
from analytics_pipeline.lake.parsing import (
    ParsedFile,
    Rejection,
    parse_landing_file,
    raw_preview,
)
from analytics_pipeline.lake.sql_text import UTF8_BOM
from analytics_pipeline.lake.stream_reading import (
    OverlongLine,
    StreamScan,
    scan_stream,
    split_blocks,
)
from analytics_pipeline.lake.validation import count_unknown
from analytics_pipeline.resources.store import (
    STREAM_CHUNK_BYTES,
    LakeStore,
    LandingObjectGone,
    content_version,
)

SOURCE_COLUMNS = ("_source_key", "_source_version", "_source_line")
# Bound memory on big batches: staged files are written every this many records.
FLUSH_RECORDS = 250_000
# A parsed table whose days come in at most this many stretches is split by slicing.
MAX_SLICED_DAYS = 1000
# One-object files are parsed together, in Arrow, this many (or this many bytes) at a time.
DOCUMENT_GROUP_FILES = 4096
DOCUMENT_GROUP_BYTES = 16 * 1024 * 1024
# Big NDJSON files parsed at once (in threads: Arrow releases the GIL), each one in memory.
PARSE_WORKERS = 2
# Files read (and hashed) beyond those being parsed, so a worker finds the next one waiting;
# read one by one as parses finish, a worker sat idle ~0.25 s per pair of IoT files.
READ_AHEAD_FILES = 2
MiB = 1024 * 1024
# NDJSON files larger than this (or than max_file_bytes, if that is smaller) are staged
# streamed: block by block, so memory stays bounded whatever the file's size.
STREAM_THRESHOLD_BYTES = 128 * MiB
# A streamed file is parsed this many bytes at a time, cut at line ends.
STREAM_BLOCK_BYTES = 16 * MiB
# A streamed file's line longer than this is quarantined unread (its first 1 KiB kept).
MAX_LINE_BYTES = 64 * MiB
# A streamed file's quarantine lines are spooled to disk above this size.
_SPOOL_BYTES = 8 * MiB


@dataclass
class FileOutcome:
    key: str
    version: str | None = None
    records: int = 0
    staged: int = 0
    # Quarantined: `rejected` records (or a whole file) malformed or invalid; `unrouted`
    # valid records of a type no table takes. records == staged + rejected + unrouted.
    rejected: int = 0
    unrouted: int = 0
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
        """Records (or whole files) quarantined as malformed or invalid."""
        return sum(f.rejected for f in self.files)

    @property
    def unrouted(self) -> int:
        """Valid records quarantined because no table takes their type."""
        return sum(f.unrouted for f in self.files)


def staged_schema(spec: DatasetSpec) -> pa.Schema:
    return pa.schema(
        [(f.name, ARROW_TYPES[f.athena_type]) for f in spec.fields]
        + [
            ("_source_key", pa.string()),
            ("_source_version", pa.string()),
            ("_source_line", pa.int32()),
        ]
    )


def read_staged_file(store: LakeStore, path: str, columns: list[str] | None = None) -> pa.Table:
    """A staged file's rows, its source key and version as dictionaries: one value repeats
    for every row of a landing file, and reading them as strings cost more than the rest."""
    return pq.read_table(
        pa.BufferReader(store.read_bytes(path)),
        columns=columns,
        read_dictionary=["_source_key", "_source_version"],
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
    stream_threshold_bytes: int = STREAM_THRESHOLD_BYTES,
    stream_block_bytes: int = STREAM_BLOCK_BYTES,
    max_line_bytes: int = MAX_LINE_BYTES,
    before_archive: Callable[[StageReport], None] | None = None,
) -> StageReport:
    """Stage these landing keys of one dataset; archive each once its records are placed.

    `before_archive` sees the report once every record is placed, before any file leaves
    landing: whatever it records (the staged days) outlives a run killed while archiving.

    A JSON document over max_file_bytes is quarantined whole. NDJSON over the smaller of
    max_file_bytes and stream_threshold_bytes is staged streamed, with the same records,
    rejections and line numbers as if it had been read whole.
    """
    read_limit = _read_limit(spec, max_file_bytes, stream_threshold_bytes)
    fetched_files = store.read_landing_many(spec.name, sorted(set(keys)), read_limit)

    def parse(key: str, data: bytes) -> ParsedFile | ParsedTable | _TooBigToHold:
        return _parse(spec, key, data, max_file_bytes, read_limit, start=start, now=now)

    def stage_streamed(key: str, head: bytes) -> tuple[StageReport, FileOutcome] | None:
        return _stage_streamed(
            store,
            spec,
            key,
            head,
            start=start,
            now=now,
            block_bytes=stream_block_bytes,
            max_line_bytes=max_line_bytes,
        )

    stager = _Stager(store, spec, stage_streamed, before_archive)
    if supports_document_batches(spec):
        for group in _document_groups(fetched_files, max_file_bytes):
            if len(group) == 1:  # over max_file_bytes (quarantined whole by parse), or alone
                key, fetched = group[0]
                stager.place(key, fetched, parse(key, fetched[0]) if fetched else None)
                continue
            documents = [(key, fetched[0]) for key, fetched in group if fetched is not None]
            stager.place_documents(group, parse_documents(spec, documents, start=start, now=now))
    else:
        for key, fetched, parsed in _parsed_ahead(spec, fetched_files, parse):
            stager.place(key, fetched, parsed)
    return stager.finish()


class _Stager:
    """Places parsed files: rows into staged/ (a part every FLUSH_RECORDS rows), rejects into
    quarantine/; once all are placed, archives them."""

    def __init__(
        self,
        store: LakeStore,
        spec: DatasetSpec,
        stage_streamed: Callable[[str, bytes], tuple[StageReport, FileOutcome] | None],
        before_archive: Callable[[StageReport], None] | None = None,
    ) -> None:
        self.store, self.spec, self.stage_streamed = store, spec, stage_streamed
        self.before_archive = before_archive
        self.report = StageReport(spec.name, batch_id="")
        self.pending = _UnwrittenRows()
        self.read: list[FileOutcome] = []
        self.identities: list[str] = []
        self.parts = 0

    def place(
        self,
        key: str,
        fetched: tuple[bytes, str] | None,
        parsed: ParsedFile | ParsedTable | _TooBigToHold | None,
    ) -> None:
        report = self.report
        outcome = FileOutcome(key)
        report.files.append(outcome)
        if fetched is None or parsed is None:
            outcome.gone = True
            return
        if isinstance(parsed, _TooBigToHold):
            streamed = self.stage_streamed(key, fetched[0])
            if streamed is None:
                outcome.gone = True
                return
            _merge(report, outcome, *streamed)
            self.identities.append(file_id(key, streamed[1].version or ""))
            self.read.append(outcome)
            return
        version = outcome.version = _version(fetched)
        self.identities.append(file_id(key, version))
        _account(report, outcome, parsed)
        self.pending.add(parsed, key, version)
        if parsed.rejections:
            path = quarantine_path(self.spec.name, key, version)
            self.store.write_bytes(path, _jsonl(r.as_json() for r in parsed.rejections))
            report.quarantine_paths.append(path)
        self.read.append(outcome)
        self._flush_if_full()

    def place_documents(
        self, group: list[tuple[str, tuple[bytes, str] | None]], parsed: ParsedDocuments
    ) -> None:
        """A group of one-object files, in order: those Arrow took add their rows at once."""
        report = self.report
        keys, versions = [], []
        position = 0
        for key, fetched in group:
            if fetched is None:
                self.place(key, None, None)
                continue
            other = parsed.others.get(position)
            if other is not None:
                self.place(key, fetched, other)
            else:
                version = _version(fetched)
                outcome = FileOutcome(key, version, records=1, staged=1)
                for name, n in parsed.unknown_fields.get(position, {}).items():
                    count_unknown(outcome.unknown_fields, name, n)
                    count_unknown(report.unknown_fields, name, n)
                report.files.append(outcome)
                self.identities.append(file_id(key, version))
                self.read.append(outcome)
                keys.append(key)
                versions.append(version)
            position += 1
        rows = parsed.rows.drop_columns(["_document"])
        for item in pc.value_counts(rows.column("dt")).to_pylist():
            report.staged_rows_by_dt[item["values"]] += item["counts"]
        self.pending.add_table(
            rows.append_column("_source_key", pa.array(keys, pa.string())).append_column(
                "_source_version", pa.array(versions, pa.string())
            )
        )
        self._flush_if_full()

    def _flush_if_full(self) -> None:
        if self.pending.size >= FLUSH_RECORDS:
            _flush(self.store, self.spec, self.report, self.pending, self.identities, self.parts)
            self.parts += 1

    def finish(self) -> StageReport:
        report = self.report
        if self.pending.size:
            _flush(self.store, self.spec, report, self.pending, self.identities, self.parts)
        report.batch_id = _batch_id(self.identities)
        # Only now is every record of every read file durably placed.
        if self.before_archive is not None:
            self.before_archive(report)
        items = [(outcome.key, outcome.version) for outcome in self.read]
        archived = self.store.archive_landing_many(self.spec.name, items)
        for outcome, (_, path) in zip(self.read, archived, strict=True):
            outcome.gone = path is None
        return report


def _version(fetched: tuple[bytes, str]) -> str:
    """A read file's content version. A read cut off at the limit has none of its own: that
    file is quarantined whole, under the version of the bytes read (as reconciliation counts
    it)."""
    return fetched[1] or content_version(fetched[0])


def _document_groups(
    fetched_files: Iterator[tuple[str, tuple[bytes, str] | None]], max_file_bytes: int
) -> Iterator[list[tuple[str, tuple[bytes, str] | None]]]:
    """Files in order, in groups of at most DOCUMENT_GROUP_FILES and about
    DOCUMENT_GROUP_BYTES; a file over max_file_bytes alone (it is quarantined whole)."""
    group: list[tuple[str, tuple[bytes, str] | None]] = []
    size = 0
    for key, fetched in fetched_files:
        length = len(fetched[0]) if fetched is not None else 0
        if length > max_file_bytes:
            if group:
                yield group
            yield [(key, fetched)]
            group, size = [], 0
            continue
        group.append((key, fetched))
        size += length
        if len(group) >= DOCUMENT_GROUP_FILES or size >= DOCUMENT_GROUP_BYTES:
            yield group
            group, size = [], 0
    if group:
        yield group


def _read_limit(spec: DatasetSpec, max_file_bytes: int, stream_threshold_bytes: int) -> int:
    """Bytes read of each landing file at first; an NDJSON file with more is streamed."""
    if spec.layout == "ndjson":
        return min(max_file_bytes, stream_threshold_bytes)
    return max_file_bytes


class _TooBigToHold:
    """Stands for a parse not done: the file is too big to hold, it is staged streamed."""


# --- streamed staging --------------------------------------------------------------------


def _stage_streamed(
    store: LakeStore,
    spec: DatasetSpec,
    key: str,
    head: bytes,
    *,
    start: date,
    now: datetime,
    block_bytes: int,
    max_line_bytes: int,
) -> tuple[StageReport, FileOutcome] | None:
    """Stage one big NDJSON file block by block: its own report and outcome, or None if it
    went (or changed) meanwhile, in which case nothing of it is left in staged/.

    `head` is the file's start, already read. Two passes over the rest: the first completes
    the content version (the md5 every staged row carries) and checks the encoding; the
    second parses and stages, PARSE_WORKERS blocks at a time, each with the same fast path or
    row-level fallback as a whole file, and writes the file's own staged parts (so they can
    be taken back) every FLUSH_RECORDS rows.
    """
    try:
        scan = scan_stream(_chunked(head, store.iter_landing(spec.name, key, offset=len(head))))
    except LandingObjectGone:
        return None
    version = scan.version
    report = StageReport(spec.name, batch_id=file_id(key, version))
    outcome = FileOutcome(key, version)
    qpath = quarantine_path(spec.name, key, version)
    if scan.utf8_error is not None:
        whole = ParsedFile(key, rejections=[Rejection(key, None, scan.utf8_error, _preview(scan))])
        _account(report, outcome, whole)
        store.write_bytes(qpath, _jsonl(r.as_json() for r in whole.rejections))
        report.quarantine_paths.append(qpath)
        return report, outcome

    pending = _UnwrittenRows()
    parts = 0
    second = StreamScan()

    def tapped() -> Iterator[bytes]:
        for chunk in _chunked(head, store.iter_landing(spec.name, key, offset=len(head))):
            second.checksum = zlib.crc32(chunk, second.checksum)
            second.size += len(chunk)
            yield chunk

    def parse(piece: bytes | OverlongLine, line: int) -> ParsedFile | ParsedTable:
        if isinstance(piece, OverlongLine):
            reason = f"line {line} is longer than the limit of {max_line_bytes} bytes"
            raw = piece.preview.decode("utf-8", errors="replace")
            return ParsedFile(key, rejections=[Rejection(key, line, reason, raw)])
        body = piece.removeprefix(UTF8_BOM) if line == 1 else piece
        return parse_ndjson_block(spec, key, body, line, start=start, now=now)

    def numbered() -> Iterator[tuple[bytes | OverlongLine, int]]:
        line = 1
        for piece in split_blocks(tapped(), block_bytes, max_line_bytes):
            yield piece, line
            line += 1 if isinstance(piece, OverlongLine) else piece.count(b"\n")

    with (
        tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool,
        ThreadPoolExecutor(max_workers=PARSE_WORKERS, thread_name_prefix="parse") as pool,
    ):
        try:
            submitted = ((pool.submit(parse, piece, line),) for piece, line in numbered())
            for (parsed,) in _results_in_order(submitted, PARSE_WORKERS):
                _account(report, outcome, parsed)
                pending.add(parsed, key, version)
                spool.write(_jsonl(r.as_json() for r in parsed.rejections))
                if pending.size >= FLUSH_RECORDS:
                    _flush(store, spec, report, pending, [], parts, prefix=report.batch_id)
                    parts += 1
        except LandingObjectGone:
            store.delete_files(report.staged_paths)
            return None
        if (second.size, second.checksum) != (scan.size, scan.checksum):
            store.delete_files(report.staged_paths)  # changed in place: the next run takes it
            return None
        if outcome.records == 0:
            # Nothing but blank lines: an empty file, as parse_landing_file says.
            outcome.blank_lines = 0
            empty = ParsedFile(key, rejections=[Rejection(key, None, "empty file", _preview(scan))])
            _account(report, outcome, empty)
            spool.write(_jsonl(r.as_json() for r in empty.rejections))
        if pending.size:
            _flush(store, spec, report, pending, [], parts, prefix=report.batch_id)
        if outcome.rejected or outcome.unrouted:
            spool.seek(0)
            store.write_stream(qpath, spool)  # type: ignore[arg-type]
            report.quarantine_paths.append(qpath)
    return report, outcome


def _chunked(head: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    """The head in STREAM_CHUNK_BYTES pieces, then the rest: one stream of modest chunks."""
    for i in range(0, len(head), STREAM_CHUNK_BYTES):
        yield head[i : i + STREAM_CHUNK_BYTES]
    yield from rest


def _preview(scan: StreamScan) -> str:
    return raw_preview(scan.head)


def _merge(report: StageReport, outcome: FileOutcome, part: StageReport, got: FileOutcome) -> None:
    for name in (
        "version",
        "records",
        "staged",
        "rejected",
        "unrouted",
        "blank_lines",
        "unknown_fields",
    ):
        setattr(outcome, name, getattr(got, name))
    for dt, rows in part.staged_rows_by_dt.items():
        report.staged_rows_by_dt[dt] += rows
    for reason, n in part.reasons.items():
        report.reasons[reason] += n
    for name, n in part.unknown_fields.items():
        count_unknown(report.unknown_fields, name, n)
    report.staged_paths += part.staged_paths
    report.quarantine_paths += part.quarantine_paths


@dataclass
class _UnwrittenRows:
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
        self.add_table(
            table.append_column("_source_version", pa.repeat(pa.scalar(version, pa.string()), n))
        )

    def add_table(self, table: pa.Table) -> None:
        """Typed rows with dt and their source columns."""
        dts = table.column("dt").combine_chunks()
        runs = _equal_value_stretches(dts, MAX_SLICED_DAYS)
        if runs is not None and len(runs) == len({dt for dt, _, _ in runs}):
            # Each day in one stretch (readings usually come in time order): zero-copy slices.
            for dt, first, length in runs:
                self.tables[dt].append(table.slice(first, length).drop_columns(["dt"]))
        else:
            for dt in pc.unique(dts).to_pylist():
                self.tables[dt].append(table.filter(pc.equal(dts, dt)).drop_columns(["dt"]))
        self.size += table.num_rows

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


def _equal_value_stretches(values: pa.Array, limit: int) -> list[tuple[Any, int, int]] | None:
    """(value, first row, rows) of each stretch of equal adjacent values; None if more
    than `limit` stretches."""
    if len(values) == 0:
        return []
    changes = pc.indices_nonzero(pc.not_equal(values.slice(1), values.slice(0, len(values) - 1)))
    if len(changes) >= limit:
        return None
    starts = [0, *(changes.to_numpy() + 1).tolist()]
    ends = [*starts[1:], len(values)]
    return [(values[a].as_py(), a, b - a) for a, b in zip(starts, ends, strict=True)]


def _parsed_ahead(
    spec: DatasetSpec,
    fetched_files: Iterator[tuple[str, tuple[bytes, str] | None]],
    parse: Callable[[str, bytes], ParsedFile | ParsedTable | _TooBigToHold],
) -> Iterator[
    tuple[str, tuple[bytes, str] | None, ParsedFile | ParsedTable | _TooBigToHold | None]
]:
    """Files with their parse, in order; big NDJSON files parsed PARSE_WORKERS at a time,
    READ_AHEAD_FILES more read ahead (at most their sum held, each under the stream threshold).

    Arrow releases the GIL, so two big files parse on two cores; small files are parsed
    inline (a thread hand-off would cost more than their parse).
    """
    if not supports_fast_path(spec):
        for key, fetched in fetched_files:
            yield key, fetched, (parse(key, fetched[0]) if fetched is not None else None)
        return
    with ThreadPoolExecutor(max_workers=PARSE_WORKERS, thread_name_prefix="parse") as pool:

        def started(key: str, fetched: tuple[bytes, str] | None) -> tuple[Any, ...]:
            if fetched is None:
                return key, None, None
            if len(fetched[0]) >= FAST_PATH_MIN_BYTES:
                return key, fetched, pool.submit(parse, key, fetched[0])
            return key, fetched, parse(key, fetched[0])

        yield from _results_in_order(
            (started(*f) for f in fetched_files), PARSE_WORKERS + READ_AHEAD_FILES
        )


def _results_in_order(items: Iterable[tuple[Any, ...]], depth: int) -> Iterator[tuple[Any, ...]]:
    """The items in their order, each with its last element's Future (if it is one) replaced
    by its result; at most `depth` items are started ahead of the one yielded."""
    ahead: deque[tuple[Any, ...]] = deque()
    for item in items:
        ahead.append(item)
        if len(ahead) >= depth:
            yield _with_last_resolved(ahead.popleft())
    while ahead:
        yield _with_last_resolved(ahead.popleft())


def _with_last_resolved(item: tuple[Any, ...]) -> tuple[Any, ...]:
    *head, last = item
    return (*head, last.result() if isinstance(last, Future) else last)


def _parse(
    spec: DatasetSpec,
    key: str,
    data: bytes,
    max_file_bytes: int,
    read_limit: int,
    *,
    start: date,
    now: datetime,
) -> ParsedFile | ParsedTable | _TooBigToHold:
    if spec.layout == "ndjson" and len(data) > read_limit:
        return _TooBigToHold()
    if len(data) > max_file_bytes:
        parsed = ParsedFile(key)
        reason = f"file is larger than the limit of {max_file_bytes} bytes"
        parsed.rejections.append(Rejection(key, None, reason, raw_preview(data)))
        return parsed
    if supports_fast_path(spec) and len(data) >= FAST_PATH_MIN_BYTES:
        return parse_landing_table(spec, key, data, start=start, now=now)
    return parse_landing_file(spec, key, data, start=start, now=now)


def _account(report: StageReport, outcome: FileOutcome, parsed: ParsedFile | ParsedTable) -> None:
    """Add a parse (a whole file, or one block of a streamed one) to the counts."""
    outcome.records += parsed.input_records
    unrouted = sum(r.unrouted for r in parsed.rejections)
    outcome.rejected += len(parsed.rejections) - unrouted
    outcome.unrouted += unrouted
    outcome.blank_lines += parsed.blank_lines
    if isinstance(parsed, ParsedTable):
        outcome.staged += parsed.table.num_rows
        for item in pc.value_counts(parsed.table.column("dt")).to_pylist():
            report.staged_rows_by_dt[item["values"]] += item["counts"]
    else:
        outcome.staged += len(parsed.records)
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
    pending: _UnwrittenRows,
    identities: list[str],
    part: int,
    prefix: str | None = None,
) -> None:
    schema = staged_schema(spec)
    batch = prefix or _batch_id(identities)
    for dt, table in pending.by_dt(schema):
        path = f"staged/{spec.name}/dt={dt}/{batch}-{part:04d}.parquet"
        # Dictionary-encoded: the source columns only (one value per landing file). For the
        # value columns, the encoder's hashing cost as much as the rest of the write, and a
        # staged file is read once or twice, then compacted.
        store.write_bytes(path, parquet_bytes(table, use_dictionary=list(SOURCE_COLUMNS[:2])))
        report.staged_paths.append(path)
    pending.clear()


def parquet_bytes(
    table: pa.Table, metadata: dict[str, str] | None = None, use_dictionary: bool | list[str] = True
) -> bytes:
    """Snappy Parquet with millisecond timestamps (what Athena and Glue read best)."""
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="snappy",
        coerce_timestamps="ms",
        allow_truncated_timestamps=False,
        use_dictionary=use_dictionary,
    )
    return sink.getvalue()


def _batch_id(identities: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(identities)).encode()).hexdigest()[:20]


def _reason_kind(reason: str) -> str:
    """Group reasons for the UI: drop the quoted value so counts aggregate."""
    return re.sub(r"'[^']*'|\d+", "…", reason)[:120]


def _jsonl(rows: Any) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
