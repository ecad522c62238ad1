"""Parsing landing files into validated records: row by row, or in Arrow for the usual files.

The API the rest of the pipeline uses."""

from analytics_pipeline.lake.parsing.arrow_parsing import ParsedTable, parse_landing_table
from analytics_pipeline.lake.parsing.records import ParsedFile, Rejection, parse_landing_file

__all__ = [
    "ParsedFile",
    "ParsedTable",
    "Rejection",
    "parse_landing_file",
    "parse_landing_table",
]
