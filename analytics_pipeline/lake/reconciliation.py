"""Landing reconciles: every record of every archived file is in staged/ or quarantine/, once."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analytics_pipeline.datasets.spec import DatasetSpec
from analytics_pipeline.lake.landing_objects import STREAM_CHUNK_BYTES, content_version
from analytics_pipeline.lake.parsing.arrow_lines import split_lines
from analytics_pipeline.lake.parsing.records import parse_landing_file
from analytics_pipeline.lake.sql_text import UTF8_BOM
from analytics_pipeline.lake.staging.staged_files import quarantine_path, read_staged_file
from analytics_pipeline.lake.staging.stream_reading import OverlongLine, StreamScanner, split_blocks
from analytics_pipeline.lake.staging.streamed import (
    MAX_LINE_BYTES,
    STREAM_BLOCK_BYTES,
    STREAM_THRESHOLD_BYTES,
)

if TYPE_CHECKING:
    from analytics_pipeline.resources.store import LakeStore

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
    store: LakeStore,
    spec: DatasetSpec,
    *,
    start: date,
    now: datetime,
    max_file_bytes: int,
    stream_threshold_bytes: int = STREAM_THRESHOLD_BYTES,
) -> Reconciliation:
    """Every archived file, re-counted, against everything in staged/ and quarantine/.

    Archived files are read a chunk at a time; an NDJSON file too big to hold is counted
    streamed (its non-blank lines: each is one record or one rejection), never held whole.
    """
    expected: dict[tuple[str, str], int] = {}
    ndjson = spec.layout == "ndjson"
    read_limit = min(max_file_bytes, stream_threshold_bytes) if ndjson else max_file_bytes
    for path in store.list_files(f"archive/{spec.name}/"):
        key = path.removeprefix(f"archive/{spec.name}/").split("~", 1)[0]
        chunks = store.iter_bytes(path)
        head = _read_up_to(chunks, read_limit + 1)
        if len(head) <= read_limit:
            parsed = parse_landing_file(spec, key, head, start=start, now=now)
            expected[(key, content_version(head))] = parsed.input_records
        elif ndjson:
            rechunked = (
                head[i : i + STREAM_CHUNK_BYTES] for i in range(0, len(head), STREAM_CHUNK_BYTES)
            )
            version, records = count_streamed_records(itertools.chain(rechunked, chunks))
            expected[(key, version)] = records
        else:
            # Quarantined whole; the version staging gave it is that of the bytes it read.
            expected[(key, content_version(head))] = 1
            _close_stream(chunks)
    staged_paths = [p for p in store.list_files(f"staged/{spec.name}/") if p.endswith(".parquet")]
    return reconcile_files(store, spec, expected, staged_paths)


def count_streamed_records(chunks: Iterator[bytes]) -> tuple[str, int]:
    """A streamed NDJSON file's content version and record count, counted independently of
    the parser: one per non-blank line (blank: JSON whitespace only); one for a file that is
    not UTF-8 or holds no record at all (quarantined whole)."""
    scanner = StreamScanner()

    def scanned() -> Iterator[bytes]:
        for chunk in chunks:
            scanner.feed(chunk)
            yield chunk

    records = 0
    first = True
    for piece in split_blocks(scanned(), STREAM_BLOCK_BYTES, MAX_LINE_BYTES):
        if isinstance(piece, OverlongLine):
            records += 1
        else:
            records += _non_blank_lines(piece.removeprefix(UTF8_BOM) if first else piece)
        first = False
    scan = scanner.finish()
    if scan.utf8_error is not None or records == 0:
        records = 1
    return scan.version, records


def _non_blank_lines(block: bytes) -> int:
    """Lines (split on LF) holding a character other than space, tab, CR or LF."""
    lines = split_lines(block)
    try:
        trimmed = pc.utf8_trim(lines, " \t\r\n")
    except pa.ArrowInvalid:
        return 0  # not UTF-8: the file counts as one whole-file reject anyway
    # Blank pieces include the empty one after a final LF, which is no line either.
    return len(lines) - int(pc.sum(pc.equal(pc.binary_length(trimmed), 0)).as_py() or 0)


def _read_up_to(chunks: Iterator[bytes], limit: int) -> bytes:
    """The first chunks of a stream, joined, until they hold at least limit bytes (or end)."""
    got: list[bytes] = []
    size = 0
    for chunk in chunks:
        got.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(got)


def _close_stream(chunks: Iterator[bytes]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def reconcile_files(
    store: LakeStore,
    spec: DatasetSpec,
    expected: dict[tuple[str, str], int],
    staged_paths: list[str],
    quarantine_paths: list[str] | None = None,
) -> Reconciliation:
    """Records expected per (key, content version) vs distinct staged lines + quarantine lines.

    quarantine_paths, when given, are the only quarantine files there are for these files
    (those the run wrote); otherwise each file's is looked for.
    """
    staged = _staged_records_by_file(store, staged_paths)
    written = None if quarantine_paths is None else set(quarantine_paths)
    result = Reconciliation()
    for (key, version), count in sorted(expected.items()):
        quarantined = _quarantine_lines(store, spec.name, key, version, written)
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


# A source with more rows than this in one staged file has its lines kept as a bitmap (a byte
# per line); the rows of smaller ones as int64 codes (see _staged_records_by_file).
BITMAP_MIN_ROWS = 64


def _staged_records_by_file(store: LakeStore, paths: list[str]) -> Counter[tuple[str, str]]:
    """Distinct staged lines per (key, version), read one staged file at a time.

    Lines staged twice (a batch re-staged after a crash) count once. A big source (a streamed
    file: millions of lines) keeps a bitmap, a byte per line, so memory stays a fraction of
    the file; the rows of small sources (one-object files make as many sources as rows)
    become one int64 each, source number << 32 | line, deduplicated by one sort at the end,
    with no Python per source but a dictionary lookup.
    """
    columns = ["_source_key", "_source_version", "_source_line"]
    numbers: dict[tuple[str, str], int] = {}  # (key, version) -> the source's number
    bitmaps: dict[int, np.ndarray] = {}
    codes = []
    for path in paths:
        table = read_staged_file(store, path, columns)
        if table.num_rows == 0:
            continue
        keys = table.column(0).combine_chunks()
        versions = table.column(1).combine_chunks()
        pair = keys.indices.to_numpy().astype(np.int64) * len(versions.dictionary)
        pair += versions.indices.to_numpy()
        pairs, row_pair, rows = np.unique(pair, return_inverse=True, return_counts=True)
        key_names, version_names = keys.dictionary.to_pylist(), versions.dictionary.to_pylist()
        local = np.array(
            [
                numbers.setdefault(
                    (key_names[p // len(version_names)], version_names[p % len(version_names)]),
                    len(numbers),
                )
                for p in pairs.tolist()
            ],
            dtype=np.int64,
        )
        lines = table.column(2).to_numpy().astype(np.int64)
        big = rows[row_pair] > BITMAP_MIN_ROWS
        codes.append((local[row_pair[~big]] << 32) | lines[~big])
        big_sources = np.flatnonzero(rows > BITMAP_MIN_ROWS).tolist()
        if big_sources:
            by_source = np.argsort(row_pair, kind="stable")
            starts = np.concatenate(([0], np.cumsum(rows)))
            for source in big_sources:
                rows_of = by_source[starts[source] : starts[source + 1]]
                _mark_lines_seen(bitmaps, int(local[source]), lines[rows_of])
    every = np.concatenate(codes) if codes else np.array([], dtype=np.int64)
    every.sort()
    distinct = every[np.concatenate(([True], every[1:] != every[:-1]))] if len(every) else every
    counts = np.bincount(distinct >> 32, minlength=len(numbers))
    # A big source's rows in files where it was small count in its bitmap.
    for number in list(bitmaps):
        first, stop = np.searchsorted(distinct >> 32, [number, number + 1])
        _mark_lines_seen(bitmaps, number, distinct[first:stop] & 0xFFFFFFFF)
        counts[number] = np.count_nonzero(bitmaps[number])
    return Counter({source: int(counts[n]) for source, n in numbers.items() if counts[n]})


def _mark_lines_seen(bitmaps: dict[int, np.ndarray], number: int, lines: np.ndarray) -> None:
    """Set these lines in the source's bitmap, growing it (doubling) as needed."""
    if len(lines) == 0:
        return
    bitmap = bitmaps.get(number)
    needed = int(lines.max()) + 1
    if bitmap is None or len(bitmap) < needed:
        grown = np.zeros(max(needed, 2 * len(bitmap) if bitmap is not None else 0), dtype=bool)
        if bitmap is not None:
            grown[: len(bitmap)] = bitmap
        bitmap = bitmaps[number] = grown
    bitmap[lines] = True


def _quarantine_lines(
    store: LakeStore, dataset: str, key: str, version: str, written: set[str] | None
) -> int:
    if written is not None and not written:
        return 0  # the run quarantined nothing
    path = quarantine_path(dataset, key, version)
    if not (path in written if written is not None else store.exists(path)):
        return 0
    found = 0
    for piece in split_blocks(store.iter_bytes(path), STREAM_BLOCK_BYTES, 1 << 62):
        assert isinstance(piece, bytes)
        # Split on LF only: a raw record may hold U+2028 or U+0085, which splitlines() splits.
        lines = piece.decode().split("\n")
        found += sum(1 for line in lines if line and json.loads(line)["source_key"] == key)
    return found
