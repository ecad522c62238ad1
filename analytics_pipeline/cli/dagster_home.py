"""The Dagster instance configuration this project expects, written once into $DAGSTER_HOME.

`concurrency.pools.default_limit: 1` makes each table's pool (assets/ranges.py `lake_pool`)
exclusive, so a second run of a table queues in Dagster rather than waiting inside its step.
That is scheduling, not safety: every write takes the table's lake lock
(`LakeStore.table_lock`), so an instance without this setting (or with its own dagster.yaml)
still has one writer per table. The queued run coordinator checks its queue every
DEQUEUE_INTERVAL_SECONDS (Dagster's default is 5 s): a dropped file's runs start sooner, and
the check is one query of the run storage, so the idle daemon barely notices. `run_monitoring` has
the daemon free the pool slots a run
still holds once it has ended (killed, then marked failed): otherwise a dead run's slot
queues its table's writes for ever. An existing dagster.yaml is only added to, never
rewritten.
"""

import argparse
import os
import warnings
from pathlib import Path

import dagster as dg

from analytics_pipeline.cli import startup_done

TELEMETRY = "telemetry:\n  enabled: false\n"
POOLS = "concurrency:\n  pools:\n    default_limit: 1\n"
# A run's slots are freed as it ends; this is for the runs that end without doing so.
FREE_SLOTS_AFTER_RUN_END_SECONDS = 30
RUN_MONITORING = (
    "run_monitoring:\n  enabled: true\n"
    f"  free_slots_after_run_end_seconds: {FREE_SLOTS_AFTER_RUN_END_SECONDS}\n"
)

DEQUEUE_INTERVAL_SECONDS = 1
RUN_COORDINATOR = (
    "run_coordinator:\n  module: dagster.core.run_coordinator\n  class: QueuedRunCoordinator\n"
    f"  config:\n    dequeue_interval_seconds: {DEQUEUE_INTERVAL_SECONDS}\n"
)


def ensure_dagster_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    text = config.read_text() if config.exists() else ""
    if "telemetry:" not in text:
        text += TELEMETRY
    if "concurrency:" not in text:
        text += POOLS
    elif "default_limit" not in text:
        print(
            f"{config}: has a concurrency section without pools.default_limit; add it so "
            "a second run of a table queues in Dagster instead of waiting on the table's lock"
        )
    if "run_monitoring:" not in text:
        text += RUN_MONITORING
    elif "free_slots_after_run_end_seconds" not in text:
        print(
            f"{config}: has a run_monitoring section without free_slots_after_run_end_seconds; "
            "add it so a killed run's pool slots are freed"
        )
    if "run_coordinator:" not in text:
        text += RUN_COORDINATOR
    config.write_text(text)
    return config


def command_instance() -> dg.DagsterInstance:
    """The instance a headless command (`make process`, `make demo`) runs against: $DAGSTER_HOME,
    given this project's settings first. Done in-process: a separate step would cost a Python
    start on every command. Dagster's beta/preview notices (about its own parameters the
    definitions use) are silenced here: they say nothing to the person running the command."""
    startup_done()
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    home = os.environ.get("DAGSTER_HOME")
    if home:
        ensure_dagster_home(Path(home))
    return dg.DagsterInstance.get()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", nargs="?", default=os.environ.get("DAGSTER_HOME"))
    args = parser.parse_args()
    if not args.home:
        parser.error("give a directory or set DAGSTER_HOME")
    ensure_dagster_home(Path(args.home))


if __name__ == "__main__":
    main()
