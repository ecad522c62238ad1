"""Staging landing files into staged/ and quarantine/: the API the rest of the pipeline uses."""

from analytics_pipeline.lake.staging.report import FileOutcome, StageReport
from analytics_pipeline.lake.staging.staged_files import (
    SOURCE_COLUMNS,
    quarantine_path,
    read_staged_file,
    staged_schema,
)
from analytics_pipeline.lake.staging.stager import stage_landing_files

__all__ = [
    "SOURCE_COLUMNS",
    "FileOutcome",
    "StageReport",
    "quarantine_path",
    "read_staged_file",
    "stage_landing_files",
    "staged_schema",
]
