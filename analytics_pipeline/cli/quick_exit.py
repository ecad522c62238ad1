"""Ending a headless command without Python's interpreter teardown.

A command that has imported Dagster, pyarrow and DuckDB spends about a second at exit
tearing down thousands of modules and collecting their objects: a third of `make process`
on an empty lake. Everything that must outlive the process is written by then (the Dagster
instance is closed, the lake's files are renamed into place), so the command flushes its
output and logs and leaves at once.
"""

from __future__ import annotations

import logging
import os
import sys


def exit_now(code: int) -> None:
    """Flush what the user sees, then leave without module teardown."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)
