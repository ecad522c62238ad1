"""The `python -m analytics_pipeline.cli.<command>` entry points.

`process` and `demo` pause Python's cyclic garbage collector while their modules load: the
imports allocate hundreds of thousands of long-lived objects, and the collector scanning
them again and again is ~0.5 s of every start. `command_instance()` freezes what the
imports allocated (never scanned again) and turns the collector back on before any work.
Imported any other way (tests, the Dagster code server), nothing changes.
"""

import gc
import sys

_COMMANDS_WITH_FAST_START = ("analytics_pipeline.cli.process", "analytics_pipeline.cli.demo")


def _started_as_fast_start_command() -> bool:
    argv = sys.orig_argv
    return "-m" in argv[:-1] and argv[argv.index("-m") + 1] in _COMMANDS_WITH_FAST_START


if _started_as_fast_start_command():
    gc.disable()


def startup_done() -> None:
    """The modules are loaded: keep their objects out of every later collection, collect again."""
    gc.freeze()
    gc.enable()
