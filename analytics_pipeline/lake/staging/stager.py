"""Stage landing files: records to staged/ by event date, rejects to quarantine/, then archive.

The order is the guarantee: a landing file is archived only after every one of its records
is durably in staged/ or quarantine/. Staged rows carry their source (key, content version,
line), so a batch staged twice after a crash is deduplicated when the day's Parquet is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from analytics_pipeline.datasets.spec import DatasetSpec
from analytics_pipeline.gc_pauses import cycle_collection_paused
from analytics_pipeline.lake.landing_objects import content_version
from analytics_pipeline.lake.parsing.arrow_parsing import (
    FAST_PATH_MIN_BYTES,
    ParsedDocuments,
    ParsedTable,
    parse_documents,
    parse_landing_table,
    supports_document_batches,
    supports_fast_path,
)
from analytics_pipeline.lake.parsing.records import (
    ParsedFile,
    Rejection,
    parse_landing_file,
    raw_preview,
)
from analytics_pipeline.lake.parsing.validation import count_unknown
from analytics_pipeline.lake.staging.parse_ahead import parsed_ahead
from analytics_pipeline.lake.staging.report import (
    FileOutcome,
    StageReport,
    account_parse,
    merge_streamed_file,
)
from analytics_pipeline.lake.staging.staged_files import (
    FLUSH_RECORDS,
    UnwrittenRows,
    batch_id,
    file_id,
    jsonl_bytes,
    quarantine_path,
    write_staged_parts,
)
from analytics_pipeline.lake.staging.streamed import (
    MAX_LINE_BYTES,
    STREAM_BLOCK_BYTES,
    STREAM_THRESHOLD_BYTES,
    stage_streamed_file,
)

if TYPE_CHECKING:
    from analytics_pipeline.resources.store import LakeStore

# One-object files are parsed together, in Arrow, this many (or this many bytes) at a time.
DOCUMENT_GROUP_FILES = 4096
DOCUMENT_GROUP_BYTES = 16 * 1024 * 1024


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
        return _parse_fetched(spec, key, data, max_file_bytes, read_limit, start=start, now=now)

    def stage_streamed(key: str, head: bytes) -> tuple[StageReport, FileOutcome] | None:
        return stage_streamed_file(
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
    # Objects a file, acyclic and kept to the end (gc_pauses); not through finish(), whose
    # Dagster events leave cyclic garbage, ~1,000 objects an event.
    with cycle_collection_paused():
        if supports_document_batches(spec):
            for group in _document_groups(fetched_files, max_file_bytes):
                if len(group) == 1:  # over max_file_bytes (quarantined whole by parse), or alone
                    key, fetched = group[0]
                    stager.place(key, fetched, parse(key, fetched[0]) if fetched else None)
                    continue
                documents = [(key, fetched[0]) for key, fetched in group if fetched is not None]
                batch = parse_documents(spec, documents, start=start, now=now)
                stager.place_documents(group, batch)
        else:
            for key, fetched, parsed in parsed_ahead(spec, fetched_files, parse):
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
        self.pending = UnwrittenRows()
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
            merge_streamed_file(report, outcome, *streamed)
            self.identities.append(file_id(key, streamed[1].version or ""))
            self.read.append(outcome)
            return
        version = outcome.version = _read_version(fetched)
        self.identities.append(file_id(key, version))
        account_parse(report, outcome, parsed)
        self.pending.add(parsed, key, version)
        if parsed.rejections:
            path = quarantine_path(self.spec.name, key, version)
            self.store.write_bytes(path, jsonl_bytes(r.as_json() for r in parsed.rejections))
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
                version = _read_version(fetched)
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
            write_staged_parts(
                self.store, self.spec, self.report, self.pending, self.identities, self.parts
            )
            self.parts += 1

    def finish(self) -> StageReport:
        report = self.report
        if self.pending.size:
            write_staged_parts(
                self.store, self.spec, report, self.pending, self.identities, self.parts
            )
        report.batch_id = batch_id(self.identities)
        # Only now is every record of every read file durably placed.
        if self.before_archive is not None:
            self.before_archive(report)
        items = [(outcome.key, outcome.version) for outcome in self.read]
        archived = self.store.archive_landing_many(self.spec.name, items)
        for outcome, (_, path) in zip(self.read, archived, strict=True):
            outcome.gone = path is None
        return report


def _read_version(fetched: tuple[bytes, str]) -> str:
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


def _parse_fetched(
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
