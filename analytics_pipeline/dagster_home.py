"""The Dagster instance configuration this project expects, written once into $DAGSTER_HOME.

`concurrency.pools.default_limit: 1` makes each table's pool (assets/ranges.py `lake_pool`)
exclusive, so a second run of a table queues in Dagster rather than waiting inside its step.
That is scheduling, not safety: every write takes the table's lake lock
(`LakeStore.table_lock`), so an instance without this setting (or with its own dagster.yaml)
still has one writer per table. An existing dagster.yaml is only added to, never rewritten.
"""

import argparse
import os
from pathlib import Path

TELEMETRY = "telemetry:\n  enabled: false\n"
POOLS = "concurrency:\n  pools:\n    default_limit: 1\n"


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
    config.write_text(text)
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", nargs="?", default=os.environ.get("DAGSTER_HOME"))
    args = parser.parse_args()
    if not args.home:
        parser.error("give a directory or set DAGSTER_HOME")
    ensure_dagster_home(Path(args.home))


if __name__ == "__main__":
    main()
