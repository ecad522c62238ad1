"""What staging did, per landing file and per batch: the counts the asset reports and the
reconciliation check compares."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from analytics_pipeline.lake.parsing.arrow_parsing import ParsedTable
from analytics_pipeline.lake.parsing.records import ParsedFile
from analytics_pipeline.lake.parsing.validation import count_unknown


@dataclass
class FileOutcome:
    """Where one landing file's records went."""

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
    """Where a batch's records went, and the staged and quarantine files it wrote."""

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
    # The rows of staged files this run wrote, by path, as written (up to HELD_STAGED_ROWS):
    # the days this run builds are compacted from them, not read back.
    held: dict[str, pa.Table] = field(default_factory=dict, repr=False)
    held_rows: int = 0

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


def account_parse(
    report: StageReport, outcome: FileOutcome, parsed: ParsedFile | ParsedTable
) -> None:
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


def merge_streamed_file(
    report: StageReport, outcome: FileOutcome, part: StageReport, got: FileOutcome
) -> None:
    """Add a streamed file's own report (`part`) and outcome (`got`) to the batch's."""
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


def _reason_kind(reason: str) -> str:
    """Group reasons for the UI: drop the quoted value so counts aggregate."""
    return re.sub(r"'[^']*'|\d+", "…", reason)[:120]
