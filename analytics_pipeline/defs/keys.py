"""Asset keys of the lake's layers, so every module names them the same way.

A key is [layer, name], and the name is distinct inside its group: the UI labels a node by
the key's last part, so `products_parquet` and `products` (the catalog table) read apart.
"""

import dagster as dg


def landing_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey(["landing", f"{dataset}_landing"])


def staged_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey(["staged", f"{dataset}_staged"])


def quarantine_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey(["quarantine", f"{dataset}_quarantine"])


def parquet_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["parquet", f"{table}_parquet"])


def table_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["table", table])


def analytics_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["analytics", name])


def ingest_job_name(dataset: str) -> str:
    return f"ingest_{dataset}"


def stage_op_name(dataset: str) -> str:
    return f"stage_{dataset}_landing_files"


def rebuild_on_upstream_update(
    snapshots: tuple[dg.AssetKey, ...] = (),
) -> dg.AutomationCondition:
    """Rebuild any day whose upstream day changed, old days included (late data).

    `eager()` only looks at the latest time window, which would drop late data on the floor.
    `since_last_handled()`: a parent day updated by the very run that rebuilt this day does
    not trigger a second rebuild (plain `any_deps_updated` rebuilt earlier days twice).

    `snapshots` are unpartitioned parents (a source's whole-table dimensions), re-read every
    hour: only a new content (data version) counts, and it rebuilds every day that has rows
    in a partitioned parent, not every day of the calendar.
    """
    updated: dg.AutomationCondition = dg.AutomationCondition.any_deps_updated()
    if snapshots:
        whole = dg.AssetSelection.assets(*snapshots)
        changed = dg.AutomationCondition.any_deps_match(
            dg.AutomationCondition.data_version_changed()
        ).allow(whole)
        has_rows = dg.AutomationCondition.any_deps_match(~dg.AutomationCondition.missing()).ignore(
            whole
        )
        updated = dg.AutomationCondition.any_deps_updated().ignore(whole) | (
            changed & has_rows
        ).with_label("snapshot_changed")
    return (
        updated.since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("rebuild_on_upstream_update")


def catalog_kind(env: str) -> str:
    """The UI's kind tag for where tables live in this deployment."""
    return "glue" if env == "aws" else "duckdb"


def engine_kind(env: str) -> str:
    return "athena" if env == "aws" else "duckdb"
