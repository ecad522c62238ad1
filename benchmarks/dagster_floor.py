"""The Dagster floor: a no-op graph of the same shape as a recorded pipeline run, replayed.

`record_shape` reads a finished lake's Dagster instance: every run, in order, with the
materializations and check evaluations it stored (asset, partition, metadata count) and its
partition tags. `replay` (run in a fresh subprocess, start-up included) builds no-op assets
with those keys on the same daily partitions and executes the same runs on a fresh SQLite
instance: ingest runs log the same per-day materializations from an op, ranged runs
materialize the same assets over the same partition range with a MaterializeResult carrying
the same number of metadata entries. What is left is Dagster's own cost for that shape.

    python -m benchmarks.dagster_floor SHAPE.json   # prints {"seconds": ...}
"""

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dagster as dg

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
PARTITION = "dagster/partition"


def record_shape(dagster_home: Path, partitions_start: str) -> dict[str, Any]:
    """Runs of the instance at dagster_home, oldest first, as plain data."""
    runs: list[dict[str, Any]] = []
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for run in reversed(instance.get_runs()):
            events = instance.all_logs(
                run.run_id,
                of_type={
                    dg.DagsterEventType.ASSET_MATERIALIZATION,
                    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
                },
            )
            materialized: list[list[Any]] = []
            checks = 0
            for entry in events:
                event = entry.dagster_event
                if event is None:
                    continue
                if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                    checks += 1
                    continue
                m = event.step_materialization_data.materialization
                materialized.append([m.asset_key.to_user_string(), m.partition, len(m.metadata)])
            tags = {k: v for k, v in run.tags.items() if k in (RANGE_START, RANGE_END, PARTITION)}
            ranged = run.job_name.startswith("__ASSET_JOB")
            runs.append(
                {"ranged": ranged, "tags": tags, "materialized": materialized, "checks": checks}
            )
    last = max((p for r in runs for _, p, _ in r["materialized"] if p), default=partitions_start)
    return {"start": partitions_start, "end": last, "runs": runs}


def shape_summary(shape: dict[str, Any]) -> dict[str, int]:
    runs = shape["runs"]
    return {
        "ingest runs": sum(1 for r in runs if not r["ranged"]),
        "ranged runs": sum(1 for r in runs if r["ranged"]),
        "materializations": sum(len(r["materialized"]) for r in runs),
        "check evaluations": sum(r["checks"] for r in runs),
    }


def replay(shape: dict[str, Any]) -> None:
    """Execute the recorded runs against no-op definitions on a fresh SQLite instance."""
    from analytics_pipeline.cli.dagster_home import ensure_dagster_home

    days = dg.DailyPartitionsDefinition(start_date=shape["start"], end_date=_after(shape["end"]))
    metadata_count: dict[str, int] = {}
    partitioned: dict[str, bool] = {}
    for run in shape["runs"]:
        for key, partition, n in run["materialized"]:
            metadata_count.setdefault(key, n)
            partitioned[key] = partitioned.get(key, False) or partition is not None
    ranged_keys = {k for r in shape["runs"] if r["ranged"] for k, _, _ in r["materialized"]}
    assets = [noop_asset(k, days, metadata_count[k]) for k in sorted(ranged_keys)]
    defs = dg.Definitions(assets=assets, jobs=[_ingest_job()])
    ingest = defs.get_job_def("floor_ingest")
    everything = defs.resolve_implicit_global_asset_job_def()
    with tempfile.TemporaryDirectory() as home:
        ensure_dagster_home(Path(home))
        with dg.DagsterInstance.from_config(home) as instance:
            for run in shape["runs"]:
                if run["ranged"]:
                    keys = sorted(
                        {dg.AssetKey.from_user_string(k) for k, _, _ in run["materialized"]}
                    )
                    everything.execute_in_process(
                        instance=instance, asset_selection=keys, tags=run["tags"]
                    )
                else:
                    config = {"events": run["materialized"], "checks": run["checks"]}
                    ingest.execute_in_process(
                        instance=instance, run_config={"ops": {"floor_stage": {"config": config}}}
                    )


def _after(day: str) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def noop_asset(key: str, days: Any, metadata_entries: int) -> Any:
    asset_key = dg.AssetKey.from_user_string(key)

    @dg.asset(
        key=asset_key,
        partitions_def=days,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def noop() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={f"m{i}": i for i in range(metadata_entries)})

    return noop


def _ingest_job() -> Any:
    @dg.op(name="floor_stage", config_schema={"events": list, "checks": int})
    def floor_stage(context: dg.OpExecutionContext) -> None:
        for key, partition, n in context.op_config["events"]:
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=dg.AssetKey.from_user_string(key),
                    partition=partition,
                    metadata={f"m{i}": i for i in range(n)},
                )
            )
        # The real ingest run logs its batch checks against the staged asset.
        for i in range(context.op_config["checks"]):
            context.log_event(
                dg.AssetCheckEvaluation(  # type: ignore[arg-type]
                    asset_key=dg.AssetKey("floor_checks"), check_name=f"c{i}", passed=True
                )
            )

    @dg.job(name="floor_ingest")
    def floor_ingest() -> None:
        floor_stage()

    return floor_ingest


def main() -> None:
    started = time.perf_counter()
    replay(json.loads(Path(sys.argv[1]).read_text()))
    print(json.dumps({"seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
