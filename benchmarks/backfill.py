"""A UI-style backfill: rebuild every day-partitioned asset downstream of a dataset's staged
days over a range, split as the assets' backfill policy splits it (one run per at most
DAYS_PER_RUN days, tagged with its partition range, as the backfill daemon launches them).

    python -m benchmarks.backfill DATASET FIRST_DAY LAST_DAY  # ANALYTICS_LAKE_DIR, DAGSTER_HOME
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date, timedelta


def backfill(dataset: str, first: date, last: date) -> int:
    """Run the ranged runs; returns how many failed."""
    import dagster as dg

    from analytics_pipeline.definitions import build_definitions
    from analytics_pipeline.defs.keys import staged_key
    from analytics_pipeline.defs.ranges import DAYS_PER_RUN
    from analytics_pipeline.memory_pool import use_system_memory_pool
    from analytics_pipeline.settings import Settings

    use_system_memory_pool()
    defs = build_definitions(Settings.from_env())
    graph = defs.resolve_asset_graph()
    downstream = dg.AssetSelection.assets(staged_key(dataset)).downstream(include_self=False)
    keys = [k for k in downstream.resolve(graph) if graph.get(k).is_partitioned]
    job = defs.resolve_implicit_global_asset_job_def()
    failed = 0
    with dg.DagsterInstance.get() as instance:
        start = first
        while start <= last:
            end = min(last, start + timedelta(days=DAYS_PER_RUN - 1))
            tags = {
                "dagster/asset_partition_range_start": start.isoformat(),
                "dagster/asset_partition_range_end": end.isoformat(),
            }
            result = job.execute_in_process(
                instance=instance, asset_selection=keys, tags=tags, raise_on_error=False
            )
            failed += not result.success
            start = end + timedelta(days=1)
    return failed


def main() -> None:
    dataset, first, last = sys.argv[1], date.fromisoformat(sys.argv[2]), sys.argv[3]
    started = time.perf_counter()
    failed = backfill(dataset, first, date.fromisoformat(last))
    print(json.dumps({"seconds": time.perf_counter() - started, "failed": failed}))


if __name__ == "__main__":
    main()
