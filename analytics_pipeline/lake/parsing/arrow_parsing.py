"""NDJSON landing bytes -> an Arrow table of typed records, parsed and validated in Arrow.

Row by row in Python, big files take minutes; in Arrow, seconds. Arrow's JSON reader and
casts are more lenient than the row-level validator in places (it normalises 2024-02-30 to
2024-03-01, reads `{...} {...}` as two rows, crashes on a top-level `null`), so it only ever
sees lines that pass cheap vectorised guards, and only keeps values that round-trip exactly.
Every other line goes through the row-level path (`records.parse_ndjson_line`), so records
and quarantine reasons are identical to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pyarrow as pa

from analytics_pipeline.datasets.spec import DatasetSpec
from analytics_pipeline.lake.parsing.arrow_lines import read_lines_in_arrow
from analytics_pipeline.lake.parsing.arrow_validation import (
    canonical_value_pattern,
    parsed_table_schema,
)
from analytics_pipeline.lake.parsing.records import (
    ParsedFile,
    Rejection,
    parse_landing_file,
    parse_ndjson_line,
    parse_ndjson_text,
)
from analytics_pipeline.lake.parsing.validation import count_unknown
from analytics_pipeline.lake.sql_text import UTF8_BOM

# Below this, a file's Arrow set-up costs more than parsing its lines in Python.
FAST_PATH_MIN_BYTES = 16 * 1024


@dataclass
class ParsedTable:
    """A landing file as a table: the spec's fields typed, plus dt and _source_line."""

    source_key: str
    table: pa.Table
    rejections: list[Rejection] = field(default_factory=list)
    blank_lines: int = 0
    # Staged records carrying fields the spec does not know, by field (schema drift).
    unknown_fields: dict[str, int] = field(default_factory=dict)

    @property
    def input_records(self) -> int:
        return self.table.num_rows + len(self.rejections)


def supports_fast_path(spec: DatasetSpec) -> bool:
    """NDJSON of flat objects whose fields Arrow can check exactly (IoT readings, say)."""
    return spec.layout == "ndjson" and _arrow_checkable(spec)


def supports_document_batches(spec: DatasetSpec) -> bool:
    """One-object files of flat objects whose fields Arrow can check (products, say)."""
    return spec.layout == "json" and _arrow_checkable(spec)


def _arrow_checkable(spec: DatasetSpec) -> bool:
    return all(canonical_value_pattern(f) is not None for f in spec.fields)


@dataclass
class ParsedDocuments:
    """One-object files parsed together: Arrow's rows for the files it took, one each, in
    their order; the row-level parse of each of the others."""

    rows: pa.Table  # parsed_table_schema (every _source_line 1), plus _document: its position
    others: dict[int, ParsedFile]  # by position
    unknown_fields: dict[int, dict[str, int]]  # by position, for files in rows


def parse_documents(
    spec: DatasetSpec, documents: list[tuple[str, bytes]], *, start: date, now: datetime
) -> ParsedDocuments:
    """What parse_landing_file gives for each (key, bytes), the usual files read in Arrow.

    Per-file json.loads and validation cost more than reading the file. Documents on one line
    are joined into NDJSON, one line each, and read as a block; a file Arrow does not take
    (pretty-printed, a BOM, not UTF-8, blank, invalid...) is parsed alone, so its records and
    quarantine reasons are parse_landing_file's own.
    """
    one_line = [i for i, (_, data) in enumerate(documents) if b"\n" not in data]
    body = b"\n".join(documents[i][1] for i in one_line)
    if not _is_utf8(body):
        one_line = [i for i in one_line if _is_utf8(documents[i][1])]
        body = b"\n".join(documents[i][1] for i in one_line)
    rows = parsed_table_schema(spec).empty_table()
    positions = np.array([], dtype=np.int64)
    unknown: dict[int, dict[str, int]] = {}
    if supports_document_batches(spec) and len(body) >= FAST_PATH_MIN_BYTES:
        read = read_lines_in_arrow(spec, body, 1, start=start, now=now)
        line_document = np.array(one_line, dtype=np.int64)
        positions = line_document[read.rows.column("_index").to_numpy()]
        rows = read.rows.drop_columns(["_index"])
        rows = rows.set_column(
            rows.schema.get_field_index("_source_line"),
            "_source_line",
            pa.repeat(pa.scalar(1, pa.int32()), len(rows)),
        )
        taken = read.taken()
        for name in sorted(read.extras):
            for part in read.extras[name]:
                for line in part.to_numpy()[taken[part.to_numpy()]].tolist():
                    count_unknown(unknown.setdefault(one_line[line], {}), name)
    rows = rows.append_column("_document", pa.array(positions, pa.int64()))
    in_rows = set(positions.tolist())
    others = {
        i: parse_landing_file(spec, key, data, start=start, now=now)
        for i, (key, data) in enumerate(documents)
        if i not in in_rows
    }
    return ParsedDocuments(rows, others, unknown)


def _is_utf8(data: bytes) -> bool:
    if data.isascii():  # no copy made; decoding makes one
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def parse_landing_table(
    spec: DatasetSpec, source_key: str, data: bytes, *, start: date, now: datetime
) -> ParsedTable:
    """What parse_landing_file gives, as one Arrow table; fast for big NDJSON files."""
    if not supports_fast_path(spec) or len(data) < FAST_PATH_MIN_BYTES:
        return _as_table(spec, parse_landing_file(spec, source_key, data, start=start, now=now))
    body = data.removeprefix(UTF8_BOM)
    if not _is_utf8(body):
        # A whole-file reject, worded by the row-level path.
        return _as_table(spec, parse_landing_file(spec, source_key, data, start=start, now=now))
    parsed = parse_ndjson_block(spec, source_key, body, 1, start=start, now=now)
    if parsed.input_records == 0:
        # Nothing but blank lines: an empty file, worded by the row-level path.
        return _as_table(spec, parse_landing_file(spec, source_key, data, start=start, now=now))
    return parsed


def parse_ndjson_block(
    spec: DatasetSpec,
    source_key: str,
    body: bytes,
    first_line: int,
    *,
    start: date,
    now: datetime,
) -> ParsedTable:
    """Whole NDJSON lines of valid UTF-8 (no BOM), numbered from first_line: a file's body
    or one block of a streamed one. Blank lines are counted, never rejected; a final LF ends
    the last line. Small blocks, and datasets Arrow cannot check, go row by row."""
    if not supports_fast_path(spec) or len(body) < FAST_PATH_MIN_BYTES:
        row_level = ParsedFile(source_key)
        parse_ndjson_text(row_level, spec, body.decode("utf-8"), first_line, start=start, now=now)
        return _as_table(spec, row_level)
    read = read_lines_in_arrow(spec, body, first_line, start=start, now=now)
    row_level = ParsedFile(source_key)
    for index in read.others().tolist():
        if read.blank[index]:
            continue
        line = read.lines[index].as_py().removesuffix("\n")
        parse_ndjson_line(row_level, spec, index + first_line, line, start=start, now=now)
    unknown = _unknown_counts(read.extras, read.rows.column("_index"), len(read.lines))
    for name, n in row_level.unknown_fields.items():
        count_unknown(unknown, name, n)
    table = _as_table(spec, row_level).table
    table = pa.concat_tables([read.rows.drop_columns(["_index"]), table])
    table = table.sort_by("_source_line") if row_level.records else table
    blank_lines = int(read.blank.sum()) - (1 if body.endswith(b"\n") else 0)
    return ParsedTable(source_key, table, row_level.rejections, blank_lines, unknown)


def _unknown_counts(
    extras: dict[str, list[pa.Array]], kept: pa.ChunkedArray, lines: int
) -> dict[str, int]:
    """Per unknown field, how many kept (valid) rows carry it; extras are line indices."""
    if not extras:
        return {}
    mask = np.zeros(lines, dtype=bool)
    mask[kept.to_numpy()] = True
    counts: dict[str, int] = {}
    for name in sorted(extras):
        for part in extras[name]:
            n = int(mask[part.to_numpy()].sum())
            if n:
                count_unknown(counts, name, n)
    return counts


def _as_table(spec: DatasetSpec, parsed: ParsedFile) -> ParsedTable:
    table = pa.Table.from_pylist(parsed.records, schema=parsed_table_schema(spec))
    return ParsedTable(
        parsed.source_key, table, parsed.rejections, parsed.blank_lines, parsed.unknown_fields
    )
