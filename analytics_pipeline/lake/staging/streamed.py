"""Staging an NDJSON file too big to hold, block by block, with the records, rejections and
line numbers it would have if read whole."""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from typing import TYPE_CHECKING

from analytics_pipeline.datasets.spec import DatasetSpec
from analytics_pipeline.lake.landing_objects import STREAM_CHUNK_BYTES, LandingObjectGone
from analytics_pipeline.lake.parsing.arrow_parsing import ParsedTable, parse_ndjson_block
from analytics_pipeline.lake.parsing.records import ParsedFile, Rejection, raw_preview
from analytics_pipeline.lake.sql_text import UTF8_BOM
from analytics_pipeline.lake.staging.parse_ahead import PARSE_WORKERS, results_in_order
from analytics_pipeline.lake.staging.report import FileOutcome, StageReport, account_parse
from analytics_pipeline.lake.staging.staged_files import (
    FLUSH_RECORDS,
    UnwrittenRows,
    file_id,
    jsonl_bytes,
    quarantine_path,
    write_staged_parts,
)
from analytics_pipeline.lake.staging.stream_reading import (
    OverlongLine,
    StreamScan,
    scan_stream,
    split_blocks,
)

if TYPE_CHECKING:
    from analytics_pipeline.resources.store import LakeStore

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


def stage_streamed_file(
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
        scan = scan_stream(_in_chunks(head, store.iter_landing(spec.name, key, offset=len(head))))
    except LandingObjectGone:
        return None
    version = scan.version
    report = StageReport(spec.name, batch_id=file_id(key, version))
    outcome = FileOutcome(key, version)
    qpath = quarantine_path(spec.name, key, version)
    if scan.utf8_error is not None:
        whole = ParsedFile(key, rejections=[Rejection(key, None, scan.utf8_error, _head_raw(scan))])
        account_parse(report, outcome, whole)
        store.write_bytes(qpath, jsonl_bytes(r.as_json() for r in whole.rejections))
        report.quarantine_paths.append(qpath)
        return report, outcome

    pending = UnwrittenRows()
    parts = 0
    second = StreamScan()

    def tapped() -> Iterator[bytes]:
        for chunk in _in_chunks(head, store.iter_landing(spec.name, key, offset=len(head))):
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
            for (parsed,) in results_in_order(submitted, PARSE_WORKERS):
                account_parse(report, outcome, parsed)
                pending.add(parsed, key, version)
                spool.write(jsonl_bytes(r.as_json() for r in parsed.rejections))
                if pending.size >= FLUSH_RECORDS:
                    write_staged_parts(
                        store, spec, report, pending, [], parts, prefix=report.batch_id
                    )
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
            empty_file = Rejection(key, None, "empty file", _head_raw(scan))
            empty = ParsedFile(key, rejections=[empty_file])
            account_parse(report, outcome, empty)
            spool.write(jsonl_bytes(r.as_json() for r in empty.rejections))
        if pending.size:
            write_staged_parts(store, spec, report, pending, [], parts, prefix=report.batch_id)
        if outcome.rejected or outcome.unrouted:
            spool.seek(0)
            store.write_stream(qpath, spool)  # type: ignore[arg-type]
            report.quarantine_paths.append(qpath)
    return report, outcome


def _in_chunks(head: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    """The head in STREAM_CHUNK_BYTES pieces, then the rest: one stream of modest chunks."""
    for i in range(0, len(head), STREAM_CHUNK_BYTES):
        yield head[i : i + STREAM_CHUNK_BYTES]
    yield from rest


def _head_raw(scan: StreamScan) -> str:
    """A whole-file reject's raw: the file's first bytes, as for a file read whole."""
    return raw_preview(scan.head)
